"""GenerateInvoice: the worker fed through SQS (``sqs:sendMessage.waitForTaskToken``).

Each SQS message body carries a task token and the invoice request. sfn-workers' SQS batch mode
runs every record as its own callback task and reports each outcome with SendTaskSuccess or
SendTaskFailure; only records whose outcome could not be reported are returned in
``batchItemFailures`` (the event source mapping has ReportBatchItemFailures), so SQS redelivers
just those, and after ``maxReceiveCount`` moves them to the dead-letter queue.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from order_models import Cents, Currency, OrderId, ShipmentRef, Strict
from pydantic import Field

from sfn_workers import TaskContext, task


class InvoiceRequest(Strict):
    orderId: OrderId
    chargeId: str
    totalCents: Cents
    currency: Currency
    shipments: Annotated[list[ShipmentRef], Field(min_length=1, max_length=500)]


class Invoice(Strict):
    invoiceId: str
    orderId: OrderId
    chargeId: str
    totalCents: Cents
    currency: Currency
    lines: int


def invoice_id(order_id: str) -> str:
    """One invoice number per order: a redelivered message renders the same invoice again."""
    return "INV-" + hashlib.sha256(order_id.encode()).hexdigest()[:10].upper()


@task
def handler(request: InvoiceRequest, ctx: TaskContext) -> Invoice:
    invoice = Invoice(
        invoiceId=invoice_id(request.orderId),
        orderId=request.orderId,
        chargeId=request.chargeId,
        totalCents=request.totalCents,
        currency=request.currency,
        lines=len(request.shipments),
    )
    ctx.logger.info("invoice generated", extra={"orderId": request.orderId, "invoiceId": invoice.invoiceId})
    return invoice
