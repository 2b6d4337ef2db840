"""``ctx.hand_off()`` and ``report_*``: a token handed to someone else is answered later, once.

Against the strict SendTask* endpoint (``tokens`` remembers every accepted outcome and every refused
call) over real HTTP, and one whole local execution whose answer is offloaded to S3.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from sfn_workers import (
    CallbackDeliveryError,
    ConfigurationError,
    PayloadTooLarge,
    S3Offload,
    TaskContext,
    report_failure,
    report_heartbeat,
    report_success,
    task,
)
from sfn_workers._aws import Clients
from sfn_workers._limits import CAUSE_MAX_CHARS, ERROR_MAX_CHARS
from sfn_workers.local import LocalRunner
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.report import handoff_id
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import ClosedAs, closed_token, handler_of, warm_clients

pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


class Request(BaseModel):
    orderId: str


class Decision(BaseModel):
    orderId: str
    approved: bool


EVENT = {"orderId": "o-1"}


def actions(endpoint: SfnEndpoint) -> list[str]:
    return [call.action for call in endpoint.calls]


# -- the task that hands off -------------------------------------------------------------------


def test_a_handed_off_task_sends_nothing_and_a_later_report_success_closes_it_once(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN a task that hands its token to a reviewer and returns
    held: list[str] = []

    def ask(request: Request, ctx: TaskContext) -> None:
        held.append(ctx.hand_off())

    token = tokens.issue()
    assert handler_of(ask)({**EVENT, "taskToken": token}, FakeLambdaContext(5)) is None

    # THEN nothing was sent, the task is still open, and the reviewer holds the raw token
    assert held == [token]
    assert actions(sfn_endpoint) == []
    assert tokens.is_open(token)

    # WHEN the reviewer answers (twice, and then a failure: a double click, a late retry)
    clients = Clients()
    assert report_success(token, Decision(orderId="o-1", approved=True), offload=False, clients=clients) is True
    assert report_success(token, {"orderId": "o-1", "approved": False}, offload=False, clients=clients) is False
    assert report_failure(token, "Rejected", "too late", clients=clients) is False

    # THEN the first answer is the one outcome; the later ones were refused once each, not retried
    assert tokens.outcome(token).json() == {"orderId": "o-1", "approved": True}
    assert [(action, code) for action, _, code in tokens.refused] == [
        ("SendTaskSuccess", "TaskTimedOut"),
        ("SendTaskFailure", "TaskTimedOut"),
    ]
    assert actions(sfn_endpoint) == ["SendTaskSuccess", "SendTaskSuccess", "SendTaskFailure"]


def test_raising_after_hand_off_still_reports_one_send_task_failure(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    def ask(request: Request, ctx: TaskContext) -> None:
        ctx.hand_off()
        raise RuntimeError("the notification could not be sent")

    token = tokens.issue()
    handler_of(ask)({**EVENT, "taskToken": token}, FakeLambdaContext(5))

    outcome = tokens.outcome(token)
    assert outcome.kind == "failure"
    assert outcome.error == "RuntimeError"
    assert json.loads(outcome.cause or "{}")["errorMessage"] == "the notification could not be sent"
    assert actions(sfn_endpoint) == ["SendTaskFailure"]


def test_returning_a_value_after_hand_off_is_reported_as_a_failure_not_dropped(tokens: MemoryTokens) -> None:
    def ask(request: Request, ctx: TaskContext) -> Decision:
        ctx.hand_off()
        return Decision(orderId=request.orderId, approved=True)

    token = tokens.issue()
    handler_of(ask)({**EVENT, "taskToken": token}, FakeLambdaContext(5))

    outcome = tokens.outcome(token)
    assert outcome.kind == "failure"
    assert outcome.error == "OutputValidationError"
    assert "hand_off" in json.loads(outcome.cause or "{}")["errorMessage"]


def test_hand_off_in_direct_mode_is_a_configuration_error() -> None:
    def ask(request: Request, ctx: TaskContext) -> None:
        ctx.hand_off()

    with pytest.raises(ConfigurationError, match="direct mode"):
        handler_of(ask)(EVENT, FakeLambdaContext(5))


def test_hand_off_from_an_sqs_record_leaves_the_record_done(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    held: list[str] = []

    def ask(request: Request, ctx: TaskContext) -> None:
        held.append(ctx.hand_off())

    token = tokens.issue()
    record = {
        "messageId": "m-1",
        "eventSource": "aws:sqs",
        "body": json.dumps({**EVENT, "taskToken": token}),
    }
    response = handler_of(ask)({"Records": [record]}, FakeLambdaContext(5))

    assert response == {"batchItemFailures": []}
    assert held == [token]
    assert actions(sfn_endpoint) == []


# -- report_* on their own ---------------------------------------------------------------------


def test_report_failure_cuts_error_and_cause_to_what_the_api_accepts(tokens: MemoryTokens) -> None:
    token = tokens.issue()

    assert report_failure(token, "E" * 1000, "c" * 100_000, clients=Clients()) is True

    outcome = tokens.outcome(token)
    assert outcome.error == "E" * ERROR_MAX_CHARS
    assert outcome.cause is not None
    assert len(outcome.cause) == CAUSE_MAX_CHARS
    assert outcome.cause.startswith("c" * 1000)
    assert outcome.cause.endswith("[truncated]")
    assert tokens.refused == []


def test_report_failure_with_an_exception_reports_its_name_and_a_lambda_like_cause(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    try:
        raise KeyError("sku-1")
    except KeyError as exc:
        assert report_failure(token, exc, clients=Clients()) is True

    outcome = tokens.outcome(token)
    assert outcome.error == "KeyError"
    assert json.loads(outcome.cause or "{}")["errorType"] == "KeyError"


@pytest.mark.parametrize("closed_as", ["TaskTimedOut", "TaskDoesNotExist", "never issued"])
def test_report_on_a_closed_token_is_false_and_not_retried(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, closed_as: ClosedAs
) -> None:
    token = closed_token(tokens, closed_as)

    assert report_success(token, {"ok": True}, offload=False, clients=Clients()) is False
    assert report_heartbeat(token, clients=Clients()) is False

    assert tokens.outcomes.get(token, []) == []
    assert actions(sfn_endpoint) == ["SendTaskSuccess", "SendTaskHeartbeat"]


def test_report_heartbeat_keeps_an_open_task_alive(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    assert report_heartbeat(token, clients=Clients()) is True
    assert tokens.heartbeats[token] == 1
    assert tokens.is_open(token)


def test_throttled_reports_are_retried_and_delivered_once(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskSuccess", Fault.throttle(), times=2)

    assert report_success(token, {"ok": True}, offload=False, clients=Clients()) is True

    assert tokens.outcome(token).json() == {"ok": True}
    assert [c.code for c in sfn_endpoint.calls_of("SendTaskSuccess")] == ["ThrottlingException"] * 2 + [None]


def test_a_report_that_cannot_be_delivered_in_time_raises_and_says_why(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("*", Fault.internal_failure(), times=None)

    with pytest.raises(CallbackDeliveryError) as raised:
        report_success(token, {"ok": True}, offload=False, clients=warm_clients(), deadline=2.0)

    message = str(raised.value)
    assert token not in message
    assert "SendTaskSuccess" in message and "InternalFailure" in message
    assert len(sfn_endpoint.calls_of("SendTaskSuccess")) >= 2
    assert tokens.is_open(token)


def test_a_permanent_refusal_raises_at_once(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskFailure", Fault.refuse())

    with pytest.raises(CallbackDeliveryError, match="AccessDenied"):
        report_failure(token, "Rejected", clients=Clients())
    assert len(sfn_endpoint.calls) == 1


def test_an_output_too_large_without_offloading_is_refused_before_sending(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    token = tokens.issue()
    with pytest.raises(PayloadTooLarge):
        report_success(token, {"blob": "x" * 300_000}, offload=False, clients=Clients())
    assert sfn_endpoint.calls == []
    assert tokens.is_open(token)


def test_handoff_id_is_stable_opaque_and_refuses_a_non_token() -> None:
    token = "AQCEAAAAKgAAAAMAAAAA" + "t" * 500
    assert handoff_id(token) == handoff_id(token)
    assert handoff_id(token) != handoff_id(token + "x")
    assert "tttt" not in handoff_id(token)
    with pytest.raises(ConfigurationError):
        handoff_id("")


# -- a whole execution ---------------------------------------------------------------------------

DEFINITION: dict[str, Any] = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "Ask",
                "Payload": {"taskToken.$": "$$.Task.Token", "orderId.$": "$.orderId"},
            },
            "TimeoutSeconds": 60,
            "ResultPath": "$.answer",
            "Next": "Use",
        },
        "Use": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "Use", "Payload.$": "$.answer"},
            "OutputPath": "$.Payload",
            "End": True,
        },
    },
}
BUCKET = "handoff-payloads"


def test_hand_off_then_report_success_completes_the_execution_with_the_offloaded_output() -> None:
    # GIVEN an execution whose Ask step hands its token off, and a Use step that reads the answer
    held: list[str] = []
    handed = threading.Event()
    offload = S3Offload(bucket=BUCKET, threshold_bytes=1024)

    @task(offload=offload, clients=Clients())
    def ask(request: Request, ctx: TaskContext) -> None:
        held.append(ctx.hand_off())
        handed.set()

    @task(offload=offload, clients=Clients())
    def use(answer: dict[str, Any]) -> dict[str, Any]:
        return {"orderId": answer["orderId"], "notesChars": len(answer["notes"])}

    with LocalRunner(DEFINITION, handlers={"Ask": ask, "Use": use}, real_time=True) as runner:
        runner.emulator.client("s3").create_bucket(Bucket=BUCKET)
        running = runner.start({"orderId": "o-9"})
        assert handed.wait(10)

        # WHEN the answer, far over the state limit, comes later from outside the execution
        answer = {"orderId": "o-9", "notes": "n" * 300_000}
        assert report_success(held[0], answer, offload=offload, clients=Clients()) is True
        result = running.result(timeout=20)

    # THEN the execution went on with a pointer in its state, and Use saw the whole answer
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"orderId": "o-9", "notesChars": 300_000}
    succeeded = [e for e in result.history if e["type"] == "TaskSucceeded"]
    ask_output = json.loads(succeeded[0]["taskSucceededEventDetails"]["output"])
    assert "sfn_workers_s3" in json.dumps(ask_output["notes"])
    assert len(json.dumps(ask_output)) < 2048
