"""Runtime smoke test: ``sam build`` the sample, then invoke each built function over HTTP through
the real Lambda runtime interface.

What runs is what Lambda would run: the ``sam build`` artifacts (the functions' code directory and
the sfn-workers layer, with the python3.12 wheels pip picked for the Lambda platform), started by
``awslambdaric`` in a Python 3.12 venv, behind the runtime interface emulator binary that the
aws-sam-cli package ships, with the template's environment variables. The functions reach a moto
server for S3 and DynamoDB and a local Step Functions endpoint for SendTask* calls through
``AWS_ENDPOINT_URL_*``, as a deployed function reaches AWS.

The venvs (.venv-tools, .venv-lambda) come from the Makefile and are reused between runs; the build
is done anew each run, of a temporary copy of the working tree's sources (so it writes nothing into the
tree). Marked slow; part of ``make test``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from sfn_workers.local.approvals import Answer, decision_event
from sfn_workers.report import handoff_id

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools"
LAMBDA_VENV = ROOT / ".venv-lambda"
EVENTS = ROOT / "events"
BUCKET = "smoke-payloads"
TABLE = "smoke-idempotency"
APPROVALS = "smoke-approvals"
REGION: Final = "eu-west-1"  # Final: a literal type, as S3's LocationConstraint wants

# The first run on a fresh machine also creates the venvs (a few minutes); later runs only build.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

sys.path.insert(0, str(ROOT / "tools"))
from check_asl import load_template  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _python312() -> Path:
    """Python 3.12 for ``sam build`` (it looks for ``python3.12`` on PATH): pyenv's, else PATH's."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True).stdout.strip()
        candidate = Path(root) / "versions" / "3.12.1" / "bin" / "python3.12"
        if candidate.exists():
            return candidate
    found = shutil.which("python3.12")
    if not found:
        pytest.fail("the runtime smoke test needs Python 3.12 (pyenv's 3.12.1 or python3.12 on PATH)")
    return Path(found)


def _architecture() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def _rie_binary() -> Path:
    found = sorted(TOOLS.glob(f"lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-{_architecture()}"))
    if not found:
        pytest.fail("aws-sam-cli in .venv-tools ships no runtime interface emulator for this architecture")
    return found[0]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venvs from the Makefile (cached), then a fresh ``sam build`` of the working tree."""
    subprocess.run(
        ["make", "-s", ".venv-tools/.installed", ".venv-lambda/.installed"], cwd=ROOT, check=True, timeout=900
    )
    work = tmp_path_factory.mktemp("sam")
    out = work / "build"
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    env["PATH"] = f"{_python312().parent}{os.pathsep}{env.get('PATH', '')}"
    done = _sam_build(_copy_of_the_sources(work / "src"), out, env)
    assert done.returncode == 0, f"sam build failed:\n{done.stdout}\n{done.stderr}"
    assert (out / "SfnWorkersLayer" / "python" / "sfn_workers" / "task.py").exists(), (
        f"the layer has no sfn_workers (its wheel build failed):\n{done.stdout}\n{done.stderr}"
    )
    return out


def _copy_of_the_sources(dest: Path) -> Path:
    """What ``sam build`` reads of the working tree, copied: pip builds the layer's wheel in the
    source tree (build/, *.egg-info), so building a copy leaves the working tree as it was and lets
    two runs build at once (aws-lambda-builders ignores a failed wheel build: a trampled build would
    leave a layer without sfn_workers)."""
    skip = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    dest.mkdir()
    shutil.copy2(ROOT / "template.yaml", dest / "template.yaml")
    for part in ("handlers", "statemachine", "layers", "sfn_workers"):
        shutil.copytree(ROOT / part, dest / part, ignore=skip)
    return dest


def _sam_build(src: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(TOOLS / "bin" / "sam"),
            "build",
            "--template",
            "template.yaml",
            "--build-dir",
            str(out),
            "--parameter-overrides",
            f"Architecture={_architecture()}",
        ],
        cwd=src,  # the layer's requirements.txt names the repository as ./
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@dataclass
class Function:
    name: str
    code: Path
    handler: str
    environment: dict[str, str]


def _resolve(value: Any, names: Mapping[str, str], parameters: Mapping[str, Any]) -> str:
    """An environment value of the template: literals as they are, ``!Ref`` to a parameter's default
    or to the emulator's name for a resource."""
    if isinstance(value, Mapping) and "Ref" in value:
        ref = value["Ref"]
        if ref in parameters:
            return str(parameters[ref].get("Default"))
        return names[ref]
    return str(value)


def built_functions(build: Path, names: Mapping[str, str]) -> dict[str, Function]:
    """The built template's functions, with their merged (Globals + own) environment."""
    template = load_template(build / "template.yaml")
    parameters = template.get("Parameters") or {}
    global_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    functions = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        own = (props.get("Environment") or {}).get("Variables") or {}
        env = {k: _resolve(v, names, parameters) for k, v in {**global_env, **own}.items()}
        code = props.get("CodeUri") or template["Globals"]["Function"]["CodeUri"]
        functions[name] = Function(name, (build / code).resolve(), props["Handler"], env)
    return functions


class Runtime:
    """One built function under the runtime interface emulator and awslambdaric."""

    def __init__(self, fn: Function, layer: Path, rie: Path, endpoints: Mapping[str, str], log: Path) -> None:
        self.fn = fn
        self.port = _free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LAMBDA_TASK_ROOT": str(fn.code),
            # As on Lambda: the function's code (/var/task) first, then the layer (/opt/python).
            "PYTHONPATH": f"{fn.code}{os.pathsep}{layer}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "sfn-workers-smoke",
            **fn.environment,
            **endpoints,
        }
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                str(rie),
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{self.port}",
                "--runtime-api-address",
                f"127.0.0.1:{_free_port()}",
                str(LAMBDA_VENV / "bin" / "python"),
                "-m",
                "awslambdaric",
                fn.handler,
            ],
            cwd=fn.code,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def invoke(self, event: Any, timeout: float = 60.0) -> Any:
        """POST the event to the emulator's Invoke API; the function's response (or error) as JSON."""
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        data = json.dumps(event).encode()
        give_up = time.monotonic() + timeout
        while True:
            try:
                request = urllib.request.Request(url, data=data, method="POST")
                with urllib.request.urlopen(request, timeout=timeout) as answer:  # nosec B310 - loopback
                    return json.loads(answer.read())
            except urllib.error.HTTPError as exc:  # the emulator answered: the runtime failed (no retry)
                body = exc.read().decode("utf-8", "replace")
                raise AssertionError(f"{self.fn.name}: HTTP {exc.code} {body}\n{self.output()}") from exc
            except (ConnectionError, urllib.error.URLError) as exc:
                # The emulator may not listen yet; it never answers a refused connection for us.
                if self.process.poll() is not None or time.monotonic() > give_up:
                    raise AssertionError(f"{self.fn.name} did not answer: {exc}\n{self.output()}") from exc
                time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def emulators(moto_server: str) -> Iterator[dict[str, Any]]:
    """moto (S3, DynamoDB) with the template's bucket and table, and a local SendTask* endpoint."""
    import boto3

    from sfn_workers.local.sfn_endpoint import MemoryTokens, SfnEndpoint

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server, region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=APPROVALS,
        AttributeDefinitions=[{"AttributeName": "approvalId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "approvalId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns = boto3.client("sns", endpoint_url=moto_server, region_name=REGION)
    topic = sns.create_topic(Name="smoke-approvals")["TopicArn"]
    endpoint = SfnEndpoint(MemoryTokens())
    endpoint.start()
    try:
        yield {"moto": moto_server, "sfn": endpoint, "s3": s3, "dynamodb": dynamodb, "approval_topic": topic}
    finally:
        endpoint.stop()
        urllib.request.urlopen(  # nosec B310 - loopback
            urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10
        ).read()


@pytest.fixture(scope="module")
def runtimes(
    build_dir: Path, emulators: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Runtime]]:
    names = {
        "PayloadBucket": BUCKET,
        "IdempotencyTable": TABLE,
        "ApprovalsTable": APPROVALS,
        "ApprovalTopic": emulators["approval_topic"],
    }
    endpoints = {
        "AWS_ENDPOINT_URL_S3": emulators["moto"],
        "AWS_ENDPOINT_URL_DYNAMODB": emulators["moto"],
        "AWS_ENDPOINT_URL_SNS": emulators["moto"],
        "AWS_ENDPOINT_URL_SFN": emulators["sfn"].url,
    }
    logs = tmp_path_factory.mktemp("runtime-logs")
    layer = build_dir / "SfnWorkersLayer" / "python"
    rie = _rie_binary()
    started: dict[str, Runtime] = {}
    try:
        for name, fn in built_functions(build_dir, names).items():
            started[name] = Runtime(fn, layer, rie, endpoints, logs / f"{name}.log")
        yield started
    finally:
        for runtime in started.values():
            runtime.stop()


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_the_build_has_every_function_and_the_layer_with_sfn_workers(build_dir: Path) -> None:
    names = {"PayloadBucket": BUCKET, "IdempotencyTable": TABLE, "ApprovalsTable": APPROVALS, "ApprovalTopic": "t"}
    functions = built_functions(build_dir, names)
    assert set(functions) == {
        "ValidateOrderFunction",
        "ManualApprovalFunction",
        "ApprovalDecisionFunction",
        "ChargeCardFunction",
        "ShipItemFunction",
        "GenerateInvoiceFunction",
    }
    layer = build_dir / "SfnWorkersLayer" / "python"
    assert (layer / "sfn_workers" / "task.py").exists()
    # the template turns tracing on: the layer ships the tracing extra, so each step gets a subsegment
    assert (layer / "aws_xray_sdk").is_dir()
    # pydantic-core is a compiled extension: the wheel must be the Lambda platform's, for cp312
    [core] = list((layer / "pydantic_core").glob("_pydantic_core.cpython-312-*-linux-gnu.so"))
    assert _architecture().replace("arm64", "aarch64") in core.name
    env = functions["ValidateOrderFunction"].environment
    assert env["SFN_WORKERS_BUCKET"] == BUCKET and env["SFN_WORKERS_PREFIX"] == "sfn-workers/"
    assert env["POWERTOOLS_SERVICE_NAME"] == "order-workflow"


def test_the_layer_ships_the_runtime_and_no_local_tooling(build_dir: Path) -> None:
    # GIVEN the layer `sam build` made from layers/runtime
    layer = build_dir / "SfnWorkersLayer" / "python" / "sfn_workers"
    # THEN it holds the runtime modules, and nothing of the local runner (moto, the interpreter, the CLI)
    assert {"task.py", "callbacks.py", "context.py"} <= {p.name for p in layer.iterdir()}
    assert not (layer / "local").exists()
    assert not list(layer.parent.glob("moto*")), "moto is a local-runner dependency, not the layer's"


def test_validate_order_happy_invalid_and_large(runtimes: dict[str, Runtime], emulators: dict[str, Any]) -> None:
    validate = runtimes["ValidateOrderFunction"]
    # GIVEN the built ValidateOrder under the runtime interface
    # WHEN it gets the happy order THEN it answers the checked order
    ok = validate.invoke(event("validate_order.json"))
    assert ok.get("inStock") is True, validate.output()
    assert ok["totalCents"] == 4348
    # WHEN it gets the invalid order THEN Lambda reports errorType ValidationError (what Catch matches)
    bad = validate.invoke(event("validate_order-invalid.json"))
    assert bad["errorType"] == "ValidationError", bad
    assert "customer.email" in bad["errorMessage"]
    # WHEN it gets the large order THEN the attachments went to the local S3 and the rest stayed inline
    large = validate.invoke(event("validate_order-large.json"))
    pointer = large["attachments"]["sfn_workers_s3"]
    assert large["inStock"] is True and len(json.dumps(large)) < 64 * 1024
    head = emulators["s3"].head_object(Bucket=pointer["bucket"], Key=pointer["key"])
    assert pointer["bucket"] == BUCKET and head["ContentLength"] == pointer["bytes"]
    # AND the built ShipItem resolves that pointer from S3
    ship = runtimes["ShipItemFunction"]
    shipped = ship.invoke(
        {
            "shipment": {
                "orderId": large["orderId"],
                "item": large["items"][0],
                "shippingAddress": large["shippingAddress"],
                "attachments": large["attachments"],
            },
            "sfn_context": {"execution": "smoke", "state": "ShipItem"},
        }
    )
    assert shipped.get("attachments") == 1, ship.output()
    assert shipped["trackingId"].startswith("TRK-")


def test_charge_card_charges_once_per_order(runtimes: dict[str, Runtime], emulators: dict[str, Any]) -> None:
    charge = runtimes["ChargeCardFunction"]
    first = charge.invoke(event("charge_card.json"))
    assert first.get("status") == "captured", charge.output()
    again = charge.invoke(event("charge_card.json"))
    assert again == first
    # the idempotency record is in the template's table (on the emulator)
    items = emulators["dynamodb"].scan(TableName=TABLE)["Items"]
    assert len(items) == 1 and items[0]["status"]["S"] == "COMPLETED"
    declined = charge.invoke(dict(event("charge_card.json"), orderId="order-9", cardToken="tok_declined"))
    assert declined["errorType"] == "CardDeclined"


def test_callback_workers_report_through_send_task(runtimes: dict[str, Runtime], emulators: dict[str, Any]) -> None:
    tokens = emulators["sfn"].backend
    # ManualApproval (lambda:invoke.waitForTaskToken) hands its token off: nothing sent, the request stored
    approval_token = tokens.issue()
    runtimes["ManualApprovalFunction"].invoke(dict(event("manual_approval.json"), taskToken=approval_token))
    assert tokens.outcomes[approval_token] == [], runtimes["ManualApprovalFunction"].output()
    assert emulators["dynamodb"].scan(TableName=APPROVALS)["Count"] == 1, runtimes["ManualApprovalFunction"].output()
    # ApprovalDecision (function URL) answers it with SendTaskSuccess, once
    decision = decision_event(handoff_id(approval_token), Answer(approved=True, reviewer="smoke"))
    reply = runtimes["ApprovalDecisionFunction"].invoke(decision)
    assert reply.get("statusCode") == 200, runtimes["ApprovalDecisionFunction"].output()
    [approved] = tokens.outcomes[approval_token]
    assert approved.kind == "success" and approved.json()["approved"] is True
    assert runtimes["ApprovalDecisionFunction"].invoke(decision)["statusCode"] == 409
    # GenerateInvoice (SQS batch): every record reported, none handed back to SQS
    batch = event("generate_invoice-sqs.json")
    body = json.loads(batch["Records"][0]["body"])
    invoice_token = tokens.issue()
    batch["Records"][0]["body"] = json.dumps(dict(body, taskToken=invoice_token))
    response = runtimes["GenerateInvoiceFunction"].invoke(batch)
    assert response == {"batchItemFailures": []}, runtimes["GenerateInvoiceFunction"].output()
    [invoiced] = tokens.outcomes[invoice_token]
    assert invoiced.kind == "success" and invoiced.json()["lines"] == 2
