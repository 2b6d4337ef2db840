"""mypy --strict must reject this file: the plain function keeps its parameter types."""

from __future__ import annotations

from pydantic import BaseModel

from sfn_workers import task


class Order(BaseModel):
    orderId: str


@task
def handler(order: Order) -> int:
    return 1


handler.__wrapped__("not an order")
