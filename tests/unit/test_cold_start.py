"""Cold-start budget: what ``import sfn_workers`` and a small direct call must not pull in.

Run in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, sys
    import sfn_workers
    after_import = sorted(m for m in ("boto3", "botocore", "aws_xray_sdk", "moto", "sfn_workers.local")
                          if m in sys.modules)

    from pydantic import BaseModel
    from sfn_workers import task

    class Order(BaseModel):
        orderId: str
        quantity: int

    @task
    def handler(order: Order) -> dict:
        return {"orderId": order.orderId, "ok": True}

    result = handler({"orderId": "o-1", "quantity": 2}, None)
    # Powertools itself imports the bare botocore package (1 ms) to tag its user agent; the costly
    # parts (sessions, clients, service models) and boto3 must stay out.
    after_call = sorted(m for m in ("boto3", "botocore.session", "botocore.client", "aws_xray_sdk",
                                    "sfn_workers.callbacks") if m in sys.modules)
    loaded = sorted(m for m in sys.modules if m == "sfn_workers" or m.startswith("sfn_workers."))
    from sfn_workers._aws import default_clients  # after the call: the probe's own look at the cache
    print(json.dumps({"after_import": after_import, "after_call": after_call, "loaded": loaded,
                      "clients": list(default_clients().created()), "result": result}))
    """
)


#: The package's modules a small direct call may load: the pipeline and what it reads at decoration.
#: Offloading's writer, resolver and S3 I/O, the retries, the clients, botocore's error readers and
#: the callback/batch/hand-off machinery load when an invocation first needs them.
DIRECT_CALL_MODULES = {
    "sfn_workers",
    "sfn_workers._limits",
    "sfn_workers._log",
    "sfn_workers._metrics",
    "sfn_workers._tracing",
    "sfn_workers.config",
    "sfn_workers.context",
    "sfn_workers.errors",
    "sfn_workers.models",
    "sfn_workers.offload",
    "sfn_workers.offload.offloader",
    "sfn_workers.offload.options",
    "sfn_workers.offload.pointers",
    "sfn_workers.retry",  # the deprecated module path: an empty module, see sfn_workers/__init__.py
    "sfn_workers.sources",
    "sfn_workers.task",
}


def run_probe(extra_env: dict[str, str] | None = None) -> dict[str, object]:
    import os

    env = {**os.environ, "SFN_WORKERS_BUCKET": "payloads", **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_pulls_in_neither_boto3_nor_xray_nor_the_local_runner() -> None:
    report = run_probe()
    assert report["after_import"] == []


def test_small_direct_call_creates_no_boto3_client() -> None:
    report = run_probe()
    assert report["result"] == {"orderId": "o-1", "ok": True}
    assert report["clients"] == []
    assert report["after_call"] == []


def test_even_with_tracing_requested_outside_lambda_xray_is_not_imported() -> None:
    report = run_probe({"POWERTOOLS_TRACE_DISABLED": "false"})
    assert report["after_call"] == []


def test_small_direct_call_loads_only_the_pipeline_modules() -> None:
    # GIVEN a fresh interpreter and a small @task handler (flat input, small output, no retries)
    report = run_probe()
    # WHEN it has been decorated and called once
    loaded = {str(name) for name in report["loaded"]}  # type: ignore[attr-defined]
    # THEN only the direct pipeline's own modules were imported
    assert loaded - DIRECT_CALL_MODULES == set()
    assert "sfn_workers.retries" not in loaded and "sfn_workers.offload.resolver" not in loaded


LAZY_NAMES_PROBE = textwrap.dedent(
    """
    import importlib, inspect, json, sys, warnings
    import sfn_workers
    import sfn_workers.offload
    import sfn_workers.errors
    problems = []
    for module, names in ((sfn_workers, sfn_workers.__all__), (sfn_workers.offload, sfn_workers.offload.__all__),
                          (sfn_workers.errors, sfn_workers.errors.__all__)):
        for name in names:
            try:
                getattr(module, name)
            except AttributeError as exc:
                problems.append(f"{module.__name__}.{name}: {exc}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import sfn_workers.retry
        from sfn_workers.retry import RetryPolicy as old_path
    from sfn_workers.retries import RetryPolicy, retry
    print(json.dumps({
        "problems": problems,
        "retry_is_the_function": sfn_workers.retry is retry and inspect.isfunction(sfn_workers.retry),
        "old_path_same_class": old_path is RetryPolicy is sfn_workers.RetryPolicy,
        "s3offload_same_class":
            sfn_workers.S3Offload is importlib.import_module("sfn_workers.offload.offloader").S3Offload,
    }))
    """
)


def test_every_lazily_loaded_name_resolves_in_a_fresh_interpreter() -> None:
    # GIVEN a fresh interpreter, where nothing but the pipeline is loaded yet
    done = subprocess.run(
        [sys.executable, "-c", LAZY_NAMES_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # THEN every public name of the package, of offload and of errors loads on first use
    assert report["problems"] == []
    # AND importing the deprecated module path afterwards leaves sfn_workers.retry the decorator
    assert report["retry_is_the_function"] is True
    assert report["old_path_same_class"] is True
    assert report["s3offload_same_class"] is True
