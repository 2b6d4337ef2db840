"""ValidateOrder (and RecheckInventory): check an order, price it, and say whether it is in stock.

An order that does not fit :class:`Order` leaves this handler as ``ValidationError``, which the
state machine catches to RejectOrder. ``inStock`` is what the CheckInventory Choice reads; the
backorder loop calls this handler again with the same order after each wait.

The output can be large (attachments): offloading keeps the fields that Choice and Map states read
inline and moves the rest to S3 as pointers, which later tasks resolve on the way in.
"""

from __future__ import annotations

import os
from typing import Annotated

from order_models import Address, Attachment, Backorder, Card, Currency, Customer, Item, OrderId
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sfn_workers import S3Offload, TaskContext, task

#: Stand-in for an inventory service: SKUs with this prefix are never in stock in the sample.
OUT_OF_STOCK_PREFIX = "OOS-"
#: Orders at or above this total (cents) go through ManualApproval.
APPROVAL_THRESHOLD_CENTS = int(os.environ.get("APPROVAL_THRESHOLD_CENTS", "100000"))

#: Fields the state machine reads after ValidateOrder: never offloaded.
ROUTING_FIELDS = [
    "orderId",
    "inStock",
    "requiresApproval",
    "backorder",
    "items",
    "totalCents",
    "currency",
    "card",
    "customer",
    "shippingAddress",
]


class Order(BaseModel):
    """The order an execution starts with.

    Derived fields of a previous ValidateOrder run (``inStock``, ``totalCents``...) are ignored and
    computed again, so the backorder loop can hand the checked order straight back in.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    orderId: OrderId
    customer: Customer
    shippingAddress: Address
    currency: Currency
    card: Card
    items: Annotated[list[Item], Field(min_length=1, max_length=500)]
    attachments: Annotated[list[Attachment], Field(max_length=20)] = []
    backorder: Backorder = Backorder()

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> Order:
        skus = [item.sku for item in self.items]
        duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
        if duplicates:
            raise ValueError(f"each SKU may appear once; repeated: {', '.join(duplicates)}")
        return self


class CheckedOrder(Order):
    """The order with what the workflow routes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    totalCents: int
    inStock: bool
    outOfStock: list[str]
    requiresApproval: bool


def out_of_stock(items: list[Item]) -> list[str]:
    """The SKUs that cannot be shipped now (the sample's inventory rule)."""
    return [item.sku for item in items if item.sku.startswith(OUT_OF_STOCK_PREFIX)]


@task(payload_field="order", offload=S3Offload(keep=ROUTING_FIELDS))
def handler(order: Order, ctx: TaskContext) -> CheckedOrder:
    total = sum(item.quantity * item.unitPriceCents for item in order.items)
    missing = out_of_stock(order.items)
    ctx.logger.info(
        "order checked",
        extra={"orderId": order.orderId, "lines": len(order.items), "outOfStock": len(missing)},
    )
    return CheckedOrder(
        **order.model_dump(),
        totalCents=total,
        inStock=not missing,
        outOfStock=missing,
        requiresApproval=total >= APPROVAL_THRESHOLD_CENTS,
    )
