"""@task in direct mode: typed input and output, error names, both decorator forms, settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from sfn_workers import (
    ConfigurationError,
    OutputValidationError,
    PayloadTooLarge,
    TaskContext,
    TaskFailure,
    ValidationError,
    task,
)
from sfn_workers.errors import describe, error_name
from sfn_workers.testing import FakeLambdaContext, task_context


class Order(BaseModel):
    orderId: str
    quantity: int = Field(gt=0)


class Checked(BaseModel):
    orderId: str
    inStock: bool


@task
def check(order: Order, ctx: TaskContext) -> Checked:
    return Checked(orderId=order.orderId, inStock=order.quantity < 10)


def test_given_valid_input_when_invoked_then_output_is_the_model_as_json() -> None:
    # GIVEN an event that fits the input model
    event = {"orderId": "o-1", "quantity": 3}
    # WHEN Lambda invokes the handler
    result = check(event, FakeLambdaContext())
    # THEN the return value is plain JSON that Step Functions can take
    assert result == {"orderId": "o-1", "inStock": True}
    assert json.loads(json.dumps(result)) == result


def test_given_invalid_input_when_invoked_then_error_type_is_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        check({"orderId": "o-1", "quantity": 0}, FakeLambdaContext())
    # Lambda reports type(exc).__name__ as errorType: that is what Catch ErrorEquals matches.
    assert type(info.value).__name__ == "ValidationError"
    assert "quantity" in str(info.value)


def test_validation_message_does_not_echo_input_values() -> None:
    with pytest.raises(ValidationError) as info:
        check({"orderId": "o-1", "quantity": "secret-card-number"}, None)
    assert "secret-card-number" not in str(info.value)


def test_given_output_not_fitting_the_return_annotation_then_output_validation_error() -> None:
    @task
    def bad(order: Order) -> Checked:
        return {"orderId": order.orderId}  # type: ignore[return-value]

    with pytest.raises(OutputValidationError) as info:
        bad({"orderId": "o-1", "quantity": 1}, None)
    assert type(info.value).__name__ == "OutputValidationError"
    assert "inStock" in str(info.value)


def test_given_output_that_is_not_json_then_output_validation_error() -> None:
    @task
    def raw(payload):  # type: ignore[no-untyped-def]
        return {"when": object()}

    with pytest.raises(OutputValidationError, match="not JSON"):
        raw({}, None)


def test_output_dict_is_validated_against_the_model() -> None:
    @task
    def as_dict(order: Order) -> Checked:
        return {"orderId": order.orderId, "inStock": "true"}  # type: ignore[return-value]

    assert as_dict({"orderId": "x", "quantity": 1}, None) == {"orderId": "x", "inStock": True}


def test_task_failure_leaves_the_handler_under_the_chosen_error_name() -> None:
    @task
    def declined(order: Order) -> Checked:
        raise TaskFailure("CardDeclined", "issuer said no")

    with pytest.raises(TaskFailure) as info:
        declined({"orderId": "o-1", "quantity": 1}, None)
    assert type(info.value).__name__ == "CardDeclined"
    assert info.value.error == "CardDeclined"
    assert info.value.cause == "issuer said no"


def test_any_other_exception_keeps_its_class_name() -> None:
    class InventoryUnavailable(Exception):
        pass

    @task
    def broken(order: Order) -> Checked:
        raise InventoryUnavailable("warehouse API down")

    with pytest.raises(InventoryUnavailable):
        broken({"orderId": "o-1", "quantity": 1}, None)


def test_bare_and_parameterised_decorators_give_the_same_handler() -> None:
    def fn(order: Order) -> Checked:
        return Checked(orderId=order.orderId, inStock=True)

    bare = task(fn)
    configured = task(offload=False, timeout_margin_ms=500)(fn)
    event = {"orderId": "o-9", "quantity": 1}
    assert bare(event, None) == configured(event, None) == {"orderId": "o-9", "inStock": True}
    assert bare.__wrapped__ is fn and configured.__wrapped__ is fn
    assert bare.__name__ == "fn"


def test_wrapped_is_the_plain_function_for_unit_tests() -> None:
    ctx = task_context()
    assert check.__wrapped__(Order(orderId="a", quantity=20), ctx) == Checked(orderId="a", inStock=False)


def test_unannotated_input_is_the_raw_json_value() -> None:
    seen: list[Any] = []

    @task
    def raw(payload):  # type: ignore[no-untyped-def]
        seen.append(payload)
        return [1, 2]

    assert raw({"a": [1, {"b": None}]}, None) == [1, 2]
    assert seen == [{"a": [1, {"b": None}]}]


def test_ctx_is_optional_and_may_be_the_only_parameter() -> None:
    @task
    def only_ctx(ctx: TaskContext) -> str:
        return ctx.request_id or "none"

    assert only_ctx({"ignored": True}, FakeLambdaContext(request_id="r-42")) == "r-42"


def test_typeadapter_types_work_as_annotations() -> None:
    @task
    def total(amounts: list[int]) -> dict[str, int]:
        return {"total": sum(amounts)}

    assert total(["1", 2], None) == {"total": 3}
    with pytest.raises(ValidationError):
        total(["x"], None)


def test_context_carries_remaining_time_and_a_deadline_less_the_margin() -> None:
    seen: dict[str, Any] = {}

    @task(timeout_margin_ms=1_000)
    def probe(payload: dict[str, Any], ctx: TaskContext) -> None:
        seen["remaining"] = ctx.remaining_ms()
        assert ctx.deadline is not None
        seen["deadline_left"] = ctx.deadline.remaining()

    probe({}, FakeLambdaContext(5.0))
    assert 4_900 < seen["remaining"] <= 5_000
    assert 3.5 < seen["deadline_left"] <= 4.0


def test_sfn_context_is_taken_out_of_the_payload_and_named_in_ctx() -> None:
    seen: dict[str, Any] = {}

    @task
    def probe(order: Order, ctx: TaskContext) -> None:
        seen.update(execution=ctx.execution, state=ctx.state)

    probe({"orderId": "a", "quantity": 1, "sfn_context": {"execution": "exec-1", "state": "Check"}}, None)
    assert seen == {"execution": "exec-1", "state": "Check"}


def test_payload_field_selects_the_input() -> None:
    @task(payload_field="order")
    def pick(order: Order) -> str:
        return order.orderId

    assert pick({"order": {"orderId": "z", "quantity": 1}, "other": 1}, None) == "z"
    with pytest.raises(ValidationError, match="payload_field"):
        pick({"orderId": "z"}, None)


def test_output_over_the_states_limit_with_offloading_off_is_payload_too_large() -> None:
    @task(offload=False)
    def big(payload: dict[str, Any]) -> dict[str, str]:
        return {"blob": "é" * 131_100}  # 262,200 UTF-8 bytes: counted as bytes, not characters

    with pytest.raises(PayloadTooLarge, match="262"):
        big({}, None)


def test_output_exactly_at_the_limit_passes_with_offloading_off() -> None:
    @task(offload=False)
    def at_limit(payload: dict[str, Any]) -> dict[str, str]:
        return {"b": "x" * (262_144 - len('{"b":""}'))}

    assert len(at_limit({}, None)["b"]) == 262_144 - 8


def test_a_function_with_two_required_inputs_is_refused_at_decoration() -> None:
    def two(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ConfigurationError, match="requires a, b"):
        task(two)


def test_bad_offload_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="offload"):
        task(offload="yes")(lambda x: x)  # type: ignore[call-overload]


def test_describe_gives_a_lambda_like_cause_within_the_api_limits() -> None:
    try:
        raise TaskFailure("E" * 300, "c" * 40_000)
    except TaskFailure as exc:
        error, cause = describe(exc)
    assert error == "E" * 256
    assert len(cause) <= 32_768
    document = json.loads(cause)  # still valid JSON after shortening
    assert set(document) == {"errorMessage", "errorType", "stackTrace"}
    assert document["errorMessage"].endswith("[truncated]")


def test_describe_keeps_short_causes_whole() -> None:
    try:
        raise ValueError("bad quantity")
    except ValueError as exc:
        error, cause = describe(exc)
        name = error_name(exc)
    assert error == "ValueError" == name
    document = json.loads(cause)
    assert document["errorMessage"] == "bad quantity"
    assert document["errorType"] == "ValueError"
    assert any("test_describe_keeps_short_causes_whole" in frame for frame in document["stackTrace"])
