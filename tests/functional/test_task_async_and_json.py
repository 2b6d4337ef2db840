"""async def tasks are awaited; NaN and Infinity never leave as output, in any mode."""

from __future__ import annotations

import asyncio
import math
import warnings
from typing import Any

import pytest
from pydantic import BaseModel

from sfn_workers import OutputValidationError, TaskContext, task
from sfn_workers.local.sfn_endpoint import MemoryTokens
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import handler_of


class Order(BaseModel):
    orderId: str


class Priced(BaseModel):
    orderId: str
    price: float


async def price(order: Order, ctx: TaskContext) -> Priced:
    await asyncio.sleep(0.001)
    return Priced(orderId=order.orderId, price=9.5)


def test_an_async_task_is_awaited_in_direct_mode_on_every_warm_call() -> None:
    handler = task(offload=False)(price)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail the test
        for n in range(3):
            assert handler({"orderId": f"o-{n}"}, FakeLambdaContext()) == {"orderId": f"o-{n}", "price": 9.5}


def test_an_async_task_is_awaited_in_callback_mode(tokens: MemoryTokens) -> None:
    token = tokens.issue()
    assert handler_of(price)({"taskToken": token, "orderId": "o-1"}, FakeLambdaContext()) is None
    assert tokens.outcome(token).json() == {"orderId": "o-1", "price": 9.5}


def test_an_async_task_called_from_running_event_loop_is_awaited_too() -> None:
    handler = task(offload=False)(price)

    async def caller() -> Any:
        return handler({"orderId": "o-9"}, None)

    assert asyncio.run(caller()) == {"orderId": "o-9", "price": 9.5}


def unannotated(payload: dict[str, Any]) -> Any:
    return {"total": float(payload["value"])}


def modelled(payload: dict[str, Any]) -> Priced:
    return Priced(orderId="o-1", price=float(payload["value"]))


def plain_float(payload: dict[str, Any]) -> float:
    return float(payload["value"])


@pytest.mark.parametrize("fn", [unannotated, modelled, plain_float])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinity_are_refused_in_direct_mode(fn: Any, value: str) -> None:
    with pytest.raises(OutputValidationError, match=r"not JSON"):
        task(offload=False)(fn)({"value": value}, FakeLambdaContext())


@pytest.mark.parametrize("fn", [unannotated, modelled, plain_float])
def test_nan_is_reported_as_output_validation_error_in_callback_mode(fn: Any, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    handler_of(fn)({"taskToken": token, "value": "nan"}, FakeLambdaContext())
    assert tokens.outcome(token).error == "OutputValidationError"


def test_finite_floats_still_pass() -> None:
    assert task(offload=False)(modelled)({"value": "1.5"}, None) == {"orderId": "o-1", "price": 1.5}
    assert not math.isnan(task(offload=False)(plain_float)({"value": "2"}, None))
