"""ShipItem: ship one order line (the FulfillOrder Map runs one invocation per item).

``attachments`` may arrive as an S3 pointer (ValidateOrder offloaded it for a large order); the
task resolves it before validation, so this function sees the real list either way.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from order_models import Address, Attachment, Item, OrderId, Strict
from pydantic import Field

from sfn_workers import TaskContext, task

CARRIER = "sample-post"


class Shipment(Strict):
    orderId: OrderId
    item: Item
    shippingAddress: Address
    attachments: Annotated[list[Attachment], Field(max_length=20)] = []


class Shipped(Strict):
    orderId: OrderId
    sku: str
    quantity: int
    carrier: str
    trackingId: str
    attachments: int


def tracking_id(order_id: str, sku: str) -> str:
    """The same line always gets the same tracking id, so a retried ShipItem books no second parcel."""
    return "TRK-" + hashlib.sha256(f"{order_id}:{sku}".encode()).hexdigest()[:12].upper()


@task(payload_field="shipment")
def handler(shipment: Shipment, ctx: TaskContext) -> Shipped:
    tracking = tracking_id(shipment.orderId, shipment.item.sku)
    ctx.logger.info("item shipped", extra={"orderId": shipment.orderId, "sku": shipment.item.sku})
    return Shipped(
        orderId=shipment.orderId,
        sku=shipment.item.sku,
        quantity=shipment.item.quantity,
        carrier=CARRIER,
        trackingId=tracking,
        attachments=len(shipment.attachments),
    )
