"""``sfn-workers serve``: the local Step Functions API driven by boto3 alone, over real HTTP.

GIVEN the endpoint (no template: state machines come from CreateStateMachine, services from the
embedded emulator) WHEN a user calls it the way they call AWS THEN they get AWS's answers: shapes,
statuses, histories, task-token round trips, and each documented error code.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.serve_support import served, sfn_client, until_closed

ROLE = "arn:aws:iam::123456789012:role/local"


def _definition(states: dict[str, Any], start: str | None = None) -> str:
    return json.dumps({"StartAt": start or next(iter(states)), "States": states})


PASS = _definition(
    {"Hello": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hi {}', $.who)"}, "End": True}}
)
SLOW = _definition({"Nap": {"Type": "Wait", "Seconds": 120, "End": True}})


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with served() as srv:
        yield srv


@pytest.fixture(scope="module")
def sfn(server: Any) -> Any:
    # StartSyncExecution's "sync-" host prefix cannot be put in front of 127.0.0.1
    return sfn_client(server.url, inject_host_prefix=False, retries={"max_attempts": 1})


def _machine(sfn: Any, definition: str = PASS, kind: str = "STANDARD") -> str:
    name = f"sm-{uuid.uuid4().hex[:10]}"
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE, type=kind)["stateMachineArn"])


def _first_message(sqs: Any, queue_url: str, sfn: Any, arn: str) -> dict[str, Any]:
    """The task's message, as a worker receives it (fails at once if the execution ended without sending it)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])  # type: ignore[no-any-return]
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            raise AssertionError(f"the execution ended without sending its token: {described}")
        time.sleep(0.05)
    raise AssertionError("no message within 20 s")


def _waiting_task(sfn: Any, server: Any, message: dict[str, Any] | None = None, **fields: Any) -> tuple[str, str, Any]:
    """A state machine whose one task sends its token (and ``message``) to a new queue and waits for an
    answer; returns the machine's ARN, the queue's URL and the SQS client."""
    sqs = server.runner.emulator.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token", **(message or {})}},
        **fields,
        "End": True,
    }
    return _machine(sfn, _definition({"Ask": task})), queue_url, sqs


def _code(call: Callable[[], Any]) -> tuple[str, str]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


# -- state machines --------------------------------------------------------------------------------


def test_create_describe_and_list_state_machines_like_aws(sfn: Any) -> None:
    # GIVEN a new state machine
    name = f"orders-{uuid.uuid4().hex[:8]}"
    created = sfn.create_state_machine(name=name, definition=PASS, roleArn=ROLE)
    arn = created["stateMachineArn"]

    # THEN its ARN has AWS's form, and Describe returns what was created
    assert arn == f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert (described["name"], described["status"], described["type"]) == (name, "ACTIVE", "STANDARD")
    assert json.loads(described["definition"]) == json.loads(PASS)
    assert described["roleArn"] == ROLE

    # AND creating it again with the same definition is idempotent, as on AWS
    assert sfn.create_state_machine(name=name, definition=PASS, roleArn=ROLE)["stateMachineArn"] == arn

    # AND ListStateMachines pages with maxResults/nextToken until every machine was seen once
    _machine(sfn)
    _machine(sfn)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 1}
    while True:
        page = sfn.list_state_machines(**kwargs)
        assert len(page["stateMachines"]) <= 1
        seen += [m["stateMachineArn"] for m in page["stateMachines"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert arn in seen and len(seen) == len(set(seen)) >= 3
    assert [
        m["stateMachineArn"]
        for m in sfn.get_paginator("list_state_machines").paginate().build_full_result()["stateMachines"]
    ] == seen


# -- executions ------------------------------------------------------------------------------------


def test_start_describe_and_history_of_a_successful_execution(sfn: Any) -> None:
    # GIVEN a state machine WHEN an execution starts with a name and an input
    machine = _machine(sfn)
    started = sfn.start_execution(stateMachineArn=machine, name="first", input='{"who": "Ada"}')
    arn = started["executionArn"]
    assert arn == machine.replace(":stateMachine:", ":execution:") + ":first"

    # THEN it succeeds with the state's output
    described = until_closed(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"greeting": "hi Ada"}
    assert json.loads(described["input"]) == {"who": "Ada"}
    assert described["stopDate"] >= described["startDate"]

    # AND its history has AWS's event types, ids and details
    events = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in events] == [1, 2, 3, 4]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"who": "Ada"}
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {"greeting": "hi Ada"}

    # AND history pages and reverses, and can leave the data out
    first = sfn.get_execution_history(executionArn=arn, maxResults=3)
    rest = sfn.get_execution_history(executionArn=arn, maxResults=3, nextToken=first["nextToken"])
    assert [e["id"] for e in first["events"] + rest["events"]] == [1, 2, 3, 4]
    assert [e["id"] for e in sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]] == [4, 3, 2, 1]
    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False)["events"]
    assert "input" not in bare[0]["executionStartedEventDetails"]

    # AND the execution is listed under its state machine, filterable by status
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [(e["executionArn"], e["status"]) for e in listed] == [(arn, "SUCCEEDED")]
    assert sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"] == []


def test_list_executions_pages_newest_first(sfn: Any) -> None:
    machine = _machine(sfn)
    arns = [sfn.start_execution(stateMachineArn=machine, name=f"e{i}", input="{}")["executionArn"] for i in range(5)]
    for arn in arns:
        until_closed(sfn, arn)
    pages = list(
        sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["executions"]) for p in pages] == [2, 2, 1]
    assert [e["executionArn"] for p in pages for e in p["executions"]] == list(reversed(arns))


def test_a_failed_execution_reports_its_error_and_cause(sfn: Any) -> None:
    machine = _machine(sfn, _definition({"Boom": {"Type": "Fail", "Error": "OrderRejected", "Cause": "no stock"}}))
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = until_closed(sfn, arn)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "OrderRejected", "no stock")
    assert "output" not in described
    assert sfn.get_execution_history(executionArn=arn)["events"][-1]["type"] == "ExecutionFailed"


def test_task_token_round_trip_through_sqs_and_boto3(sfn: Any, server: Any) -> None:
    # GIVEN a state machine whose task sends its token to a queue and waits for it
    machine, queue_url, sqs = _waiting_task(
        sfn, server, {"order.$": "$.id"}, TimeoutSeconds=60, ResultPath="$.approval"
    )
    arn = sfn.start_execution(stateMachineArn=machine, input='{"id": "o-1"}')["executionArn"]

    # WHEN a worker receives the message and answers with SendTaskSuccess through boto3
    body = _first_message(sqs, queue_url, sfn, arn)
    assert body["order"] == "o-1"
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.send_task_heartbeat(taskToken=body["token"])
    sfn.send_task_success(taskToken=body["token"], output='{"approved": true}')

    # THEN the execution continues with that output
    described = until_closed(sfn, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"id": "o-1", "approval": {"approved": True}}

    # AND the token is closed: a second answer is refused
    code, _ = _code(lambda: sfn.send_task_success(taskToken=body["token"], output="{}"))
    assert code in ("TaskDoesNotExist", "TaskTimedOut")


def test_task_failure_through_the_endpoint_fails_the_task(sfn: Any, server: Any) -> None:
    machine, queue_url, sqs = _waiting_task(sfn, server)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    token = _first_message(sqs, queue_url, sfn, arn)["token"]
    sfn.send_task_failure(taskToken=token, error="PaymentDeclined", cause="card expired")
    described = until_closed(sfn, arn)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "PaymentDeclined",
        "card expired",
    )


def test_stop_execution_aborts_a_running_execution(sfn: Any) -> None:
    machine = _machine(sfn, SLOW)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    stopped = sfn.stop_execution(executionArn=arn, error="Operator", cause="changed my mind")

    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Operator", "changed my mind")
    assert stopped["stopDate"] == described["stopDate"]
    assert sfn.get_execution_history(executionArn=arn)["events"][-1]["type"] == "ExecutionAborted"


def test_same_name_and_input_of_a_running_execution_returns_it(sfn: Any) -> None:
    machine = _machine(sfn, SLOW)
    first = sfn.start_execution(stateMachineArn=machine, name="once", input='{"a": 1}')
    again = sfn.start_execution(stateMachineArn=machine, name="once", input='{"a": 1}')
    assert again["executionArn"] == first["executionArn"]
    code, message = _code(lambda: sfn.start_execution(stateMachineArn=machine, name="once", input='{"a": 2}'))
    assert code == "ExecutionAlreadyExists" and first["executionArn"] in message
    sfn.stop_execution(executionArn=first["executionArn"])
    # a closed execution's name cannot be reused either, even with the same input
    code, _ = _code(lambda: sfn.start_execution(stateMachineArn=machine, name="once", input='{"a": 1}'))
    assert code == "ExecutionAlreadyExists"


def test_start_sync_execution_runs_an_express_machine_to_the_end(sfn: Any) -> None:
    express = _machine(sfn, kind="EXPRESS")
    answer = sfn.start_sync_execution(stateMachineArn=express, input='{"who": "Grace"}')
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"greeting": "hi Grace"}
    assert ":express:" in answer["executionArn"]
    assert answer["billingDetails"]["billedDurationInMilliseconds"] >= 100

    standard = _machine(sfn)
    code, _ = _code(lambda: sfn.start_sync_execution(stateMachineArn=standard, input="{}"))
    assert code == "StateMachineTypeNotSupported"


# -- error codes -----------------------------------------------------------------------------------


def test_each_documented_error_code(sfn: Any) -> None:
    machine = _machine(sfn)
    missing_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:nope"
    missing_execution = "arn:aws:states:us-east-1:123456789012:execution:nope:nope"

    assert _code(lambda: sfn.describe_state_machine(stateMachineArn=missing_machine))[0] == "StateMachineDoesNotExist"
    assert _code(lambda: sfn.start_execution(stateMachineArn=missing_machine))[0] == "StateMachineDoesNotExist"
    assert _code(lambda: sfn.describe_state_machine(stateMachineArn="not-an-arn"))[0] == "InvalidArn"
    assert _code(lambda: sfn.describe_execution(executionArn=machine))[0] == "InvalidArn"
    assert _code(lambda: sfn.describe_execution(executionArn=missing_execution))[0] == "ExecutionDoesNotExist"
    assert _code(lambda: sfn.stop_execution(executionArn=missing_execution))[0] == "ExecutionDoesNotExist"
    assert _code(lambda: sfn.get_execution_history(executionArn=missing_execution))[0] == "ExecutionDoesNotExist"

    name = sfn.describe_state_machine(stateMachineArn=machine)["name"]
    code, _ = _code(lambda: sfn.create_state_machine(name=name, definition=SLOW, roleArn=ROLE))
    assert code == "StateMachineAlreadyExists"

    code, message = _code(lambda: sfn.create_state_machine(name="bad-json", definition="{nope", roleArn=ROLE))
    assert code == "InvalidDefinition"
    bad_next = _definition({"A": {"Type": "Pass", "Next": "Nowhere"}})
    code, message = _code(lambda: sfn.create_state_machine(name="bad-next", definition=bad_next, roleArn=ROLE))
    assert code == "InvalidDefinition" and "Nowhere" in message and "'A'" in message

    assert _code(lambda: sfn.create_state_machine(name="has space", definition=PASS, roleArn=ROLE))[0] == "InvalidName"
    assert _code(lambda: sfn.start_execution(stateMachineArn=machine, name="a/b"))[0] == "InvalidName"
    assert _code(lambda: sfn.create_state_machine(name="r", definition=PASS, roleArn="role"))[0] == "InvalidArn"

    assert _code(lambda: sfn.start_execution(stateMachineArn=machine, input="{not json"))[0] == "InvalidExecutionInput"
    # the input limit is 262,144 UTF-8 bytes: "é" is two
    big = json.dumps({"x": "é" * 131_070}, ensure_ascii=False)
    assert len(big) < 262_144 < len(big.encode())
    code, message = _code(lambda: sfn.start_execution(stateMachineArn=machine, input=big))
    assert code == "ValidationException" and "262144" in message
    fits = json.dumps({"x": "a" * (262_144 - 9)})
    assert len(fits) == 262_144
    assert sfn.start_execution(stateMachineArn=machine, input=fits)["executionArn"]

    assert _code(lambda: sfn.create_state_machine(name="x" * 81, definition=PASS, roleArn=ROLE))[0] == (
        "ValidationException"
    )
    assert _code(lambda: sfn.list_executions(stateMachineArn=machine, maxResults=1001))[0] == "ValidationException"
    assert _code(lambda: sfn.list_executions(stateMachineArn=machine, nextToken="garbage"))[0] == "InvalidToken"

    # SendTask*: the real limits and codes
    assert _code(lambda: sfn.send_task_success(taskToken="never-issued", output="{}"))[0] == "InvalidToken"
    assert _code(lambda: sfn.send_task_heartbeat(taskToken="never-issued"))[0] == "InvalidToken"
    assert _code(lambda: sfn.send_task_success(taskToken="t", output="not json"))[0] == "InvalidOutput"
    assert _code(lambda: sfn.send_task_failure(taskToken="t", error="e" * 257))[0] == "ValidationException"


def test_a_token_whose_task_timed_out_answers_task_timed_out(sfn: Any, server: Any) -> None:
    machine, queue_url, sqs = _waiting_task(sfn, server, TimeoutSeconds=1)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = until_closed(sfn, arn)
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")
    token = json.loads(sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"][0]["Body"])["token"]
    assert _code(lambda: sfn.send_task_success(taskToken=token, output="{}"))[0] == "TaskTimedOut"


def test_bad_requests_never_crash_the_endpoint(server: Any, sfn: Any) -> None:
    url = urlparse(server.url)

    def post(target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        if target is not None:
            headers["X-Amz-Target"] = target
        conn.request("POST", "/", body=body, headers=headers)
        answer = conn.getresponse()
        status, data = answer.status, json.loads(answer.read() or b"{}")
        conn.close()
        return status, data

    assert post("AWSStepFunctions.StartExecution", b"{not json")[1]["__type"] == "SerializationException"
    assert post("AWSStepFunctions.StartExecution", b"[1, 2]")[1]["__type"] == "SerializationException"
    assert post("AWSStepFunctions.StartExecution", b'{"stateMachineArn": 42}')[1]["__type"] == "SerializationException"
    assert post("AWSStepFunctions.StartExecution", b"{}")[1]["__type"] == "ValidationException"
    assert (
        post("AWSStepFunctions.ListExecutions", b'{"stateMachineArn": "x", "maxResults": "ten"}')[1]["__type"]
        == "SerializationException"
    )
    assert post("AWSStepFunctions.NoSuchThing", b"{}")[1]["__type"] == "UnknownOperationException"
    assert post(None, b"{}")[0] == 400
    assert (
        post(
            "AWSStepFunctions.CreateStateMachine", b'{"name": "n", "definition": "[]", "roleArn": "%s"}' % ROLE.encode()
        )[1]["__type"]
        == "InvalidDefinition"
    )

    # AND the endpoint still serves
    assert "stateMachines" in sfn.list_state_machines()


def test_graceful_shutdown_aborts_running_executions_and_stops_listening() -> None:
    import boto3
    from botocore.config import Config

    from sfn_workers.local.api.server import start_server

    # GIVEN a second server with an execution in a long Wait
    srv = start_server(None, port=0)
    client = boto3.client(
        "stepfunctions",
        endpoint_url=srv.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )
    machine = client.create_state_machine(name="slow", definition=SLOW, roleArn=ROLE)["stateMachineArn"]
    arn = client.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    url = srv.url

    # WHEN it shuts down
    started = time.monotonic()
    srv.close(grace=5)

    # THEN the execution was aborted cleanly (not left RUNNING), quickly, and the port is closed
    assert time.monotonic() - started < 5
    described = srv.service.describe_execution({"executionArn": arn})
    assert described["status"] == "ABORTED"
    assert srv.service.history(arn)[-1]["type"] == "ExecutionAborted"
    parsed = urlparse(url)
    assert parsed.hostname is not None
    with pytest.raises(OSError):
        http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2).request("POST", "/", body=b"{}")


WORKER = """
import json, sys, time
from sfn_workers import task

class Context:  # what the Lambda runtime interface passes
    function_name = "approve"
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:approve"
    _deadline = time.monotonic() + 30
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)

@task
def handler(order: dict) -> dict:
    return {"approved": order["orderId"] == "o-7"}

handler({"taskToken": sys.argv[1], "orderId": "o-7"}, Context())
"""


def test_a_worker_in_another_process_reports_its_token_through_aws_endpoint_url_sfn(sfn: Any, server: Any) -> None:
    """What ``sam local invoke`` or the Lambda runtime interface does: only AWS_ENDPOINT_URL_SFN points here."""
    import os
    import subprocess
    import sys

    # GIVEN an execution waiting on a task token
    machine, queue_url, sqs = _waiting_task(sfn, server)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    token = _first_message(sqs, queue_url, sfn, arn)["token"]

    # WHEN an sfn-workers handler runs in its own process with the endpoint in AWS_ENDPOINT_URL_SFN
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(
        {
            "AWS_ENDPOINT_URL_SFN": server.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, token], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert worker.returncode == 0, worker.stderr

    # THEN its SendTaskSuccess reached the endpoint and the execution finished with its output
    described = until_closed(sfn, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"approved": True}
