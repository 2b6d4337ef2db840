"""@task composes with Powertools: a plain function, handler decorators above it, refused below it."""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.parser import event_parser
from pydantic import BaseModel

from sfn_workers import ConfigurationError, TaskContext, task
from sfn_workers.task import Task
from sfn_workers.testing import FakeLambdaContext


class Order(BaseModel):
    orderId: str
    quantity: int = 1


class Checked(BaseModel):
    orderId: str
    ok: bool


def check(order: Order, ctx: TaskContext) -> Checked:
    return Checked(orderId=order.orderId, ok=order.quantity < 10)


def test_task_returns_a_plain_function_carrying_the_function_and_its_runner() -> None:
    handler = task(offload=False)(check)
    assert inspect.isfunction(handler)
    assert handler.__wrapped__ is check
    assert isinstance(handler.task, Task)
    assert handler.__name__ == "check" and handler.__module__ == __name__
    assert handler({"orderId": "o-1"}, FakeLambdaContext()) == {"orderId": "o-1", "ok": True}


def test_logger_tracer_and_metrics_decorators_above_task_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    stream = io.StringIO()
    logger = Logger(service="composition-above", stream=stream)
    tracer = Tracer(service="composition-above")
    metrics = Metrics(namespace="tests", service="composition-above")
    metrics.add_metric(name="Checked", unit="Count", value=1)

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    @task(offload=False, logger=logger)
    def handler(order: Order, ctx: TaskContext) -> Checked:
        ctx.logger.info("checking")
        return Checked(orderId=order.orderId, ok=True)

    context = FakeLambdaContext(request_id="req-above")
    assert handler({"orderId": "o-1"}, context) == {"orderId": "o-1", "ok": True}
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["message"] == "checking" and line["function_request_id"] == "req-above"
    assert line["function_name"] == context.function_name


def test_event_parser_and_event_source_above_task_hand_over_their_objects() -> None:
    @event_parser(model=Order)
    @task(offload=False)
    def parsed(order: Order) -> Checked:
        return Checked(orderId=order.orderId, ok=True)

    context: Any = FakeLambdaContext()  # Powertools types the context as its own LambdaContext
    assert parsed({"orderId": "o-2", "quantity": 3}, context) == {"orderId": "o-2", "ok": True}

    @event_source(data_class=EventBridgeEvent)
    @task(offload=False)
    def kind(event: Any) -> str:
        assert isinstance(event, EventBridgeEvent)
        return event.detail_type

    assert kind({"detail-type": "OrderPlaced", "detail": {}}, context) == "OrderPlaced"


def test_validator_above_task_validates_the_event_first() -> None:
    pytest.importorskip("fastjsonschema")
    from aws_lambda_powertools.utilities.validation import validator
    from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError

    schema = {"type": "object", "required": ["orderId"], "properties": {"orderId": {"type": "string"}}}

    @validator(inbound_schema=schema)
    @task(offload=False)
    def handler(order: Order) -> Checked:
        return Checked(orderId=order.orderId, ok=True)

    assert handler({"orderId": "o-3"}, FakeLambdaContext()) == {"orderId": "o-3", "ok": True}
    with pytest.raises(SchemaValidationError):
        handler({"quantity": 1}, FakeLambdaContext())


def _below(decorator: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    @task(offload=False)
    @decorator
    def handler(order: Order, ctx: TaskContext) -> Checked:
        return Checked(orderId=order.orderId, ok=True)


@pytest.mark.parametrize("which", ["inject_lambda_context", "capture_lambda_handler", "log_metrics", "event_parser"])
def test_handler_decorators_below_task_fail_at_decoration_naming_the_right_order(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    decorators: dict[str, Any] = {
        "inject_lambda_context": Logger(service="below").inject_lambda_context,
        "capture_lambda_handler": Tracer(service="below").capture_lambda_handler,
        "log_metrics": Metrics(namespace="tests", service="below").log_metrics,
        "event_parser": event_parser(model=Order),
    }
    with pytest.raises(ConfigurationError, match="above @task") as raised:
        _below(decorators[which])
    assert "@logger.inject_lambda_context" in str(raised.value)


def test_method_decorators_below_task_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = Tracer(service="below-method")

    @task(offload=False)
    @tracer.capture_method
    def handler(order: Order, ctx: TaskContext) -> Checked:
        return Checked(orderId=order.orderId, ok=ctx.token is None)

    assert handler({"orderId": "o-4"}, FakeLambdaContext()) == {"orderId": "o-4", "ok": True}
