"""The fault matrix of guaranteed callbacks, one row per test, over real HTTP.

Every handler reaches the strict local endpoint through ``AWS_ENDPOINT_URL_SFN``. For each row:
exactly one outcome per token (or the handler raises so that Lambda retries), and nothing else:
``tokens.refused`` lists every call the endpoint refused, ``sfn_endpoint.calls`` every request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from sfn_workers import CallbackDeliveryError, S3Offload, TaskContext, TaskFailure
from sfn_workers.callbacks import SEND_ATTEMPTS
from sfn_workers.errors import CAUSE_LIMIT, ERROR_LIMIT
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import ClosedAs, closed_token, handler_of


class Order(BaseModel):
    orderId: str
    quantity: int


class Checked(BaseModel):
    orderId: str
    inStock: bool


pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


def check(order: Order, ctx: TaskContext) -> Checked:
    if order.quantity < 0:
        raise ValueError("quantity must not be negative")
    return Checked(orderId=order.orderId, inStock=order.quantity < 10)


def failure(tokens: MemoryTokens, token: str) -> tuple[str | None, dict[str, Any]]:
    outcome = tokens.outcome(token)
    assert outcome.kind == "failure", outcome
    assert outcome.cause is not None
    return outcome.error, json.loads(outcome.cause)


EVENT = {"orderId": "o-1", "quantity": 3}


# -- the function's own outcome ----------------------------------------------------------------


def test_success_reports_the_validated_output_once(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    handler = handler_of(check)
    assert handler({**EVENT, "taskToken": token}, FakeLambdaContext(5)) is None
    assert tokens.outcome(token).json() == {"orderId": "o-1", "inStock": True}
    assert tokens.refused == []
    assert [c.action for c in sfn_endpoint.calls] == ["SendTaskSuccess"]


def test_handler_raises_reports_its_class_name_and_a_lambda_like_cause(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    assert handler_of(check)({"orderId": "o-1", "quantity": -1, "taskToken": token}, FakeLambdaContext(5)) is None
    error, cause = failure(tokens, token)
    assert error == "ValueError"
    assert cause["errorType"] == "ValueError"
    assert cause["errorMessage"] == "quantity must not be negative"
    assert any("in check" in frame for frame in cause["stackTrace"])
    assert tokens.refused == []


def test_input_invalid_reports_validation_error(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    handler_of(check)({"orderId": "o-1", "taskToken": token}, FakeLambdaContext(5))
    error, cause = failure(tokens, token)
    assert error == "ValidationError"
    assert "quantity" in cause["errorMessage"]


def test_missing_payload_field_reports_validation_error(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    handler_of(check, payload_field="order")({"taskToken": token}, FakeLambdaContext(5))
    error, cause = failure(tokens, token)
    assert error == "ValidationError"
    assert "'order'" in cause["errorMessage"]


def test_output_invalid_reports_output_validation_error(tokens: MemoryTokens) -> None:
    def wrong(order: Order) -> Checked:
        return {"orderId": order.orderId}  # type: ignore[return-value]

    token = tokens.issue()
    handler_of(wrong)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    assert failure(tokens, token)[0] == "OutputValidationError"


def test_output_too_large_without_offloading_reports_payload_too_large(tokens: MemoryTokens) -> None:
    def huge(order: Order) -> dict[str, str]:
        return {"blob": "x" * 262_144}

    token = tokens.issue()
    handler_of(huge)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    error, cause = failure(tokens, token)
    assert error == "PayloadTooLarge"
    assert "262144" in cause["errorMessage"] or "262,144" in cause["errorMessage"]


def test_large_output_is_offloaded_and_the_success_carries_a_pointer(tokens: MemoryTokens, aws: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="payloads")

    def huge(order: Order) -> dict[str, str]:
        return {"orderId": order.orderId, "blob": "x" * 300_000}

    token = tokens.issue()
    handler = handler_of(huge, offload=S3Offload(bucket="payloads", keep=["orderId"]))
    handler({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    output = tokens.outcome(token).json()
    assert output["orderId"] == "o-1"
    assert output["blob"]["sfn_workers_s3"]["bucket"] == "payloads"


def test_s3_down_while_offloading_reports_offload_error(tokens: MemoryTokens, aws: str) -> None:
    # GIVEN a bucket that does not exist (S3 answers NoSuchBucket to every write)
    def huge(order: Order) -> dict[str, str]:
        return {"blob": "x" * 300_000}

    token = tokens.issue()
    handler = handler_of(huge, offload=S3Offload(bucket="no-such-bucket"))
    # WHEN the output must be offloaded, THEN the task fails with OffloadError, reported once
    handler({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    error, cause = failure(tokens, token)
    assert error == "OffloadError"
    assert "no-such-bucket" in cause["errorMessage"]


def test_s3_unreachable_while_offloading_reports_offload_error(
    tokens: MemoryTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there

    def huge(order: Order) -> dict[str, str]:
        return {"blob": "x" * 300_000}

    token = tokens.issue()
    handler_of(huge, offload=S3Offload(bucket="payloads"))({**EVENT, "taskToken": token}, FakeLambdaContext(3))
    assert failure(tokens, token)[0] == "OffloadError"


def test_task_failure_with_oversized_error_and_cause_is_cut_to_what_the_api_accepts(tokens: MemoryTokens) -> None:
    # The strict endpoint refuses error > 256 and cause > 32,768 characters: it must be accepted.
    def refuse(order: Order) -> None:
        raise TaskFailure("E" * 1000, '"quoted" \u2028 ' * 20_000)

    token = tokens.issue()
    handler_of(refuse)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    outcome = tokens.outcome(token)
    assert outcome.error == "E" * ERROR_LIMIT
    assert outcome.cause is not None and len(outcome.cause) <= CAUSE_LIMIT
    assert json.loads(outcome.cause)["errorMessage"].endswith("[truncated]")


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_base_exceptions_are_reported_then_re_raised(tokens: MemoryTokens, exc_type: type[BaseException]) -> None:
    def leave(order: Order) -> None:
        raise exc_type("bye")

    token = tokens.issue()
    with pytest.raises(exc_type):
        handler_of(leave)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    assert failure(tokens, token)[0] == exc_type.__name__


# -- the Send* calls under faults --------------------------------------------------------------


def test_send_throttled_twice_is_retried_and_delivered_once(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskSuccess", Fault.throttle(), times=2)
    handler_of(check)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    assert tokens.outcome(token).kind == "success"
    assert [c.code for c in sfn_endpoint.calls_of("SendTaskSuccess")] == ["ThrottlingException"] * 2 + [None]


def test_dropped_connection_is_retried(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskFailure", Fault.drop())
    handler_of(check)({"orderId": "o", "quantity": -1, "taskToken": token}, FakeLambdaContext(5))
    assert failure(tokens, token)[0] == "ValueError"


@pytest.mark.parametrize("quantity", [3, -1], ids=["success", "failure"])
def test_send_500_on_every_try_raises_callback_delivery_error_within_the_lambda_time(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, quantity: int
) -> None:
    # GIVEN Step Functions answers 500 to every call
    token = tokens.issue()
    sfn_endpoint.inject("*", Fault.internal_failure(), times=None)
    context = FakeLambdaContext(1.0)
    # WHEN the handler reports, THEN it raises so that Lambda's retries keep the event
    with pytest.raises(CallbackDeliveryError) as raised:
        handler_of(check)({"orderId": "o", "quantity": quantity, "taskToken": token}, context)
    assert token not in str(raised.value)
    # retried, and given up before the Lambda's end
    sends = [c for c in sfn_endpoint.calls if c.action.startswith("SendTask")]
    assert 2 <= len(sends) <= SEND_ATTEMPTS
    assert context.get_remaining_time_in_millis() > 0
    assert tokens.outcomes[token] == []
    assert tokens.is_open(token)


def test_permanent_refusal_is_not_retried_and_raises(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskSuccess", Fault.refuse())
    with pytest.raises(CallbackDeliveryError, match="AccessDenied"):
        handler_of(check)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    assert len(sfn_endpoint.calls) == 1


def test_refused_output_is_reported_as_a_failure_instead(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskSuccess", Fault.refuse("InvalidOutput", "Invalid Output"))
    handler_of(check)({**EVENT, "taskToken": token}, FakeLambdaContext(5))
    assert failure(tokens, token)[0] == "OutputValidationError"


@pytest.mark.parametrize("closed_as", ["TaskTimedOut", "TaskDoesNotExist", "never issued"])
def test_token_already_closed_is_logged_and_the_handler_returns(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, closed_as: ClosedAs
) -> None:
    # GIVEN a task that is closed already (timed out, its execution ended, or a token never issued)
    token = closed_token(tokens, closed_as)
    ran: list[str] = []

    def work(order: Order) -> Checked:
        ran.append(order.orderId)
        return Checked(orderId=order.orderId, inStock=True)

    # WHEN the worker finishes, THEN it returns normally: there is nothing to report to
    assert handler_of(work)({**EVENT, "taskToken": token}, FakeLambdaContext(5)) is None
    assert ran == ["o-1"]
    assert tokens.outcomes.get(token, []) == []
    expected = "InvalidToken" if closed_as == "never issued" else closed_as
    assert [(action, code) for action, _, code in tokens.refused] == [("SendTaskSuccess", expected)]
    assert len(sfn_endpoint.calls) == 1  # not retried


def test_empty_token_raises_without_calling_step_functions(sfn_endpoint: SfnEndpoint) -> None:
    with pytest.raises(CallbackDeliveryError, match="empty"):
        handler_of(check)({**EVENT, "taskToken": ""}, FakeLambdaContext(5))
    assert sfn_endpoint.calls == []


def test_outside_lambda_there_is_no_watchdog_and_the_outcome_is_still_reported(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    handler_of(check)({**EVENT, "taskToken": token}, None)
    assert tokens.outcome(token).kind == "success"
