"""The local SendTask* endpoint answers like Step Functions, over real HTTP, to boto3.

moto does not enforce these limits; the endpoint must, or the callback tests would prove nothing.
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.local.token_backend import ApiError


def client(endpoint: SfnEndpoint, attempts: int = 1) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),  # no SDK retries
    )


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def tokens(sfn_endpoint: SfnEndpoint) -> MemoryTokens:
    assert isinstance(sfn_endpoint.backend, MemoryTokens)
    return sfn_endpoint.backend


@pytest.fixture
def sfn(sfn_endpoint: SfnEndpoint) -> Any:
    return client(sfn_endpoint)


# -- limits and codes of the real API ----------------------------------------------------------


def test_success_is_recorded_once_and_a_second_report_answers_task_timed_out(sfn: Any, tokens: MemoryTokens) -> None:
    # GIVEN an open task
    token = tokens.issue()
    # WHEN the worker reports success, then (wrongly) again
    sfn.send_task_success(taskToken=token, output='{"ok": true}')
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")
    # THEN exactly one outcome is recorded, and the second call is journaled as refused
    assert tokens.outcome(token).json() == {"ok": True}
    assert tokens.refused == [("SendTaskSuccess", token, "TaskTimedOut")]


def test_unknown_token_answers_invalid_token(sfn: Any, tokens: MemoryTokens) -> None:
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_heartbeat(taskToken="never-issued")


def test_closed_task_answers_task_does_not_exist_when_closed_so(sfn: Any, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    tokens.close(token, code="TaskDoesNotExist")
    with pytest.raises(sfn.exceptions.TaskDoesNotExist):
        sfn.send_task_failure(taskToken=token, error="E")
    assert tokens.outcomes[token] == []


def test_output_at_the_limit_is_accepted_and_one_byte_more_is_a_validation_exception(
    sfn: Any, tokens: MemoryTokens
) -> None:
    # The limit counts UTF-8 bytes: "é" is two of them.
    limit = 262_144
    at_limit = json.dumps("é" * ((limit - 2) // 2), ensure_ascii=False)
    assert len(at_limit.encode()) == limit
    token = tokens.issue()
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken=token, output=json.dumps("é" * ((limit - 2) // 2) + "x", ensure_ascii=False))
    assert code_of(exc) == "ValidationException"
    assert "Value at 'output' failed to satisfy constraint" in str(exc.value)
    sfn.send_task_success(taskToken=token, output=at_limit)
    assert tokens.outcome(token).kind == "success"


def test_output_that_is_not_json_is_invalid_output(sfn: Any, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    with pytest.raises(sfn.exceptions.InvalidOutput):
        sfn.send_task_success(taskToken=token, output="{not json")
    assert tokens.is_open(token)


@pytest.mark.parametrize(
    ("error", "cause", "accepted"),
    [
        ("E" * 256, "c" * 32_768, True),
        ("E" * 257, "c", False),
        ("E", "c" * 32_769, False),
    ],
)
def test_failure_error_and_cause_limits(sfn: Any, tokens: MemoryTokens, error: str, cause: str, accepted: bool) -> None:
    token = tokens.issue()
    if accepted:
        sfn.send_task_failure(taskToken=token, error=error, cause=cause)
        assert tokens.outcome(token).error == error
    else:
        with pytest.raises(ClientError) as exc:
            sfn.send_task_failure(taskToken=token, error=error, cause=cause)
        assert code_of(exc) == "ValidationException"
        assert tokens.is_open(token)


def test_token_longer_than_2048_is_a_validation_exception(sfn: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sfn.send_task_heartbeat(taskToken="t" * 2049)
    assert code_of(exc) == "ValidationException"


# -- bad requests never crash it ---------------------------------------------------------------


def raw_post(endpoint: SfnEndpoint, body: bytes, target: str | None) -> tuple[int, dict[str, Any]]:
    host, port = endpoint.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


@pytest.mark.parametrize(
    ("body", "target", "code"),
    [
        (b"{not json", "AWSStepFunctions.SendTaskSuccess", "SerializationException"),
        (b"\xff\xfe", "AWSStepFunctions.SendTaskSuccess", "SerializationException"),
        (b"[1, 2]", "AWSStepFunctions.SendTaskSuccess", "SerializationException"),
        (b'{"taskToken": 5, "output": "{}"}', "AWSStepFunctions.SendTaskSuccess", "SerializationException"),
        (b"{}", "AWSStepFunctions.SendTaskSuccess", "ValidationException"),
        (b'{"output": "{}"}', "AWSStepFunctions.SendTaskSuccess", "ValidationException"),
        (b"{}", "AWSStepFunctions.NoSuchAction", "UnknownOperationException"),
        (b"{}", None, "UnknownOperationException"),
        (b"{}", "SomethingElse.SendTaskSuccess", "UnknownOperationException"),
    ],
)
def test_bad_requests_get_an_aws_error_answer_and_the_endpoint_keeps_serving(
    sfn_endpoint: SfnEndpoint, sfn: Any, tokens: MemoryTokens, body: bytes, target: str | None, code: str
) -> None:
    status, answer = raw_post(sfn_endpoint, body, target)
    assert (status, answer["__type"]) == (400, code)
    # still serving
    token = tokens.issue()
    sfn.send_task_heartbeat(taskToken=token)
    assert tokens.heartbeats[token] == 1


def test_a_handler_bug_is_a_500_internal_failure_not_a_crash(sfn_endpoint: SfnEndpoint, sfn: Any) -> None:
    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug")

    sfn_endpoint.register("DescribeExecution", broken)
    with pytest.raises(ClientError) as exc:
        sfn.describe_execution(executionArn="arn:aws:states:us-east-1:123456789012:execution:sm:run")
    assert code_of(exc) == "InternalFailure"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


# -- more actions ------------------------------------------------------------------------------


def test_registered_actions_answer_their_result_and_their_api_errors(sfn_endpoint: SfnEndpoint, sfn: Any) -> None:
    executions: dict[str, str] = {}

    def start_execution(request: dict[str, Any]) -> dict[str, Any]:
        if not request["stateMachineArn"].endswith(":order"):
            raise ApiError("StateMachineDoesNotExist", "State Machine Does Not Exist")
        arn = request["stateMachineArn"].replace(":stateMachine:", ":execution:") + ":" + request["name"]
        executions[arn] = request.get("input", "{}")
        return {"executionArn": arn, "startDate": 1_700_000_000.5}

    sfn_endpoint.register("StartExecution", start_execution)
    started = sfn.start_execution(
        stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:order", name="run-1", input="{}"
    )
    assert started["executionArn"].endswith(":execution:order:run-1")
    assert started["startDate"].year == 2023
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:other", name="x")


# -- scripted faults ---------------------------------------------------------------------------


def test_injected_throttling_applies_to_the_next_n_requests_of_that_action(
    sfn_endpoint: SfnEndpoint, sfn: Any, tokens: MemoryTokens
) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskHeartbeat", Fault.throttle(), times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            sfn.send_task_heartbeat(taskToken=token)
        assert code_of(exc) == "ThrottlingException"
    sfn.send_task_heartbeat(taskToken=token)
    assert [c.code for c in sfn_endpoint.calls_of("SendTaskHeartbeat")] == ["ThrottlingException"] * 2 + [None]
    assert tokens.heartbeats[token] == 1


def test_an_injected_fault_without_count_repeats_until_cleared(
    sfn_endpoint: SfnEndpoint, sfn: Any, tokens: MemoryTokens
) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("*", Fault.internal_failure(), times=None)
    for _ in range(3):
        with pytest.raises(ClientError) as exc:
            sfn.send_task_success(taskToken=token, output="{}")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    sfn_endpoint.clear_faults()
    sfn.send_task_success(taskToken=token, output="{}")
    assert tokens.outcome(token).kind == "success"


def test_refusal_and_dropped_connection(sfn_endpoint: SfnEndpoint, sfn: Any, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskFailure", Fault.refuse())
    sfn_endpoint.inject("SendTaskFailure", Fault.drop())
    with pytest.raises(ClientError) as exc:
        sfn.send_task_failure(taskToken=token, error="E")
    assert code_of(exc) == "AccessDeniedException"
    with pytest.raises(ConnectionClosedError):
        sfn.send_task_failure(taskToken=token, error="E")
    assert tokens.is_open(token)


def test_stop_is_prompt_even_with_a_delayed_request_in_flight(sfn: Any, tokens: MemoryTokens) -> None:
    # GIVEN an endpoint of its own, with a request delayed far beyond the test
    endpoint = SfnEndpoint(tokens)
    endpoint.start()
    slow = client(endpoint)
    endpoint.inject("SendTaskHeartbeat", Fault.delay(60))
    token = tokens.issue()
    thread = threading.Thread(target=slow.send_task_heartbeat, kwargs={"taskToken": token}, daemon=True)
    thread.start()
    while not endpoint.in_flight and thread.is_alive():
        threading.Event().wait(0.01)
    # WHEN it stops, THEN the delayed request is answered and the stop returns
    endpoint.stop(grace=2.0)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert tokens.heartbeats[token] == 1
