"""Checked by mypy --strict in test_typing.py: users keep their types through @task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, reveal_type

from pydantic import BaseModel

from sfn_workers import TaskContext, TaskHandler, task


class Order(BaseModel):
    orderId: str


class Checked(BaseModel):
    ok: bool


@task
def bare(order: Order, ctx: TaskContext) -> Checked:
    return Checked(ok=bool(order.orderId))


@task(offload=False, timeout_margin_ms=500)
def configured(order: Order) -> Checked:
    return Checked(ok=True)


plain: Callable[[Order, TaskContext], Checked] = bare.__wrapped__
handler: TaskHandler[[Order], Checked] = configured
result: Any = bare({"orderId": "o-1"}, None)
reveal_type(bare)
reveal_type(configured.__wrapped__)
