"""``sfn-workers serve`` stays responsive while hostile expressions run, and frees their slots.

GIVEN a server with 3 execution slots (in a child process, so that a frozen server cannot freeze the
test's own client and its timeout) WHEN executions run an endless JSONata recursion, a
catastrophic regex and a many-star StringMatches THEN unrelated API calls answer within 1 s (the
client's read timeout, one attempt: a hard limit, not a timing assertion), the recursion fails with
States.QueryEvaluationError, the others answer, and a new execution gets a slot afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serve_support import until_closed

ROLE = "arn:aws:iam::123456789012:role/local"

RECURSION = {
    "QueryLanguage": "JSONata",
    "StartAt": "Loop",
    "States": {"Loop": {"Type": "Pass", "Output": "{% ( $f := function($x){ $f($x) }; $f(1) ) %}", "End": True}},
}
REGEX = {
    "QueryLanguage": "JSONata",
    "StartAt": "Match",
    "States": {"Match": {"Type": "Pass", "Output": "{% $exists($match($states.input.s, /^(a+)+$/)) %}", "End": True}},
}
GLOB = {
    "StartAt": "C",
    "States": {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.s", "StringMatches": "*a*a*a*a*a*a*b", "Next": "Yes"}],
            "Default": "No",
        },
        "Yes": {"Type": "Succeed"},
        "No": {"Type": "Fail", "Error": "NoMatch"},
    },
}
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


_SERVE = """
import sys
from sfn_workers.local.api.server import start_server
srv = start_server(None, port=0, max_executions=3)
print(srv.url, flush=True)
sys.stdin.read()
srv.close(grace=30)
"""


@pytest.fixture
def server_url() -> Iterator[str]:
    child = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        try:
            child.communicate(timeout=60)  # closes stdin: the server shuts down
        finally:
            child.kill()


def _client(url: str, read_timeout: float) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=read_timeout, connect_timeout=1
        ),
    )


def _start(sfn: Any, definition: dict[str, Any], doc: Any) -> str:
    arn = sfn.create_state_machine(name=f"sm-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return str(sfn.start_execution(stateMachineArn=arn, input=json.dumps(doc))["executionArn"])


def _until_closed(sfn: Any, arn: str) -> dict[str, Any]:
    return until_closed(sfn, arn, timeout=60.0, every=0.1)


@pytest.mark.timeout(120)
def test_unrelated_calls_answer_within_a_second_while_hostile_expressions_run(server_url: str) -> None:
    sfn = _client(server_url, read_timeout=30)
    quick = _client(server_url, read_timeout=1)  # raises ReadTimeoutError past 1 s
    a_then_b, only_a = {"s": "a" * 5000 + "b"}, {"s": "a" * 5000}  # the worst case of each pattern
    runs = [_start(sfn, RECURSION, {}), _start(sfn, REGEX, a_then_b), _start(sfn, GLOB, only_a)]
    # WHEN the endless recursion is still running THEN unrelated calls answer within the 1 s timeout
    answered = 0
    while sfn.describe_execution(executionArn=runs[0])["status"] == "RUNNING":
        quick.list_state_machines()
        answered += 1
        time.sleep(0.2)
    assert answered >= 1
    # THEN the recursion failed with AWS's JSONata error; the regex and the glob answered "no match"
    recursion = _until_closed(sfn, runs[0])
    assert (recursion["status"], recursion["error"]) == ("FAILED", "States.QueryEvaluationError")
    assert "evaluation budget" in recursion["cause"]
    regex = _until_closed(sfn, runs[1])
    assert (regex["status"], json.loads(regex["output"])) == ("SUCCEEDED", False)
    glob = _until_closed(sfn, runs[2])
    assert (glob["status"], glob["error"]) == ("FAILED", "NoMatch")
    # AND the slots are free again: a plain execution runs to the end
    assert _until_closed(sfn, _start(sfn, PASS, {"ok": 1}))["status"] == "SUCCEEDED"
