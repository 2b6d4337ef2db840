"""ManualApproval: the review an expensive order waits for (``lambda:invoke.waitForTaskToken``).

The state hands this function a task token; sfn-workers' callback mode reports the outcome with
SendTaskSuccess (the :class:`Approval`) or SendTaskFailure (``OrderRejected``), and sends
heartbeats while the review runs (``SFN_WORKERS_HEARTBEAT_SECONDS``, well under the state's
HeartbeatSeconds), so the execution is never left hanging on a crashed reviewer.

The sample's reviewer is a policy: orders over ``APPROVAL_LIMIT_CENTS`` are rejected. Replace
:func:`review` with a call to your own review system.
"""

from __future__ import annotations

import os

from order_models import Cents, Currency, OrderId, Strict

from sfn_workers import TaskContext, TaskFailure, task

APPROVAL_LIMIT_CENTS = int(os.environ.get("APPROVAL_LIMIT_CENTS", "5000000"))


class ApprovalRequest(Strict):
    orderId: OrderId
    customerId: str
    totalCents: Cents
    currency: Currency


class Approval(Strict):
    orderId: OrderId
    approved: bool
    reviewer: str
    reason: str


def review(request: ApprovalRequest) -> str:
    """The reason for approving; raises ``TaskFailure("OrderRejected", ...)`` to reject."""
    if request.totalCents > APPROVAL_LIMIT_CENTS:
        raise TaskFailure(
            "OrderRejected",
            f"total {request.totalCents} {request.currency} cents is over the approval limit {APPROVAL_LIMIT_CENTS}",
        )
    return f"total within the approval limit of {APPROVAL_LIMIT_CENTS} cents"


@task
def handler(request: ApprovalRequest, ctx: TaskContext) -> Approval:
    ctx.heartbeat()  # the review has started: tells Step Functions this worker is alive
    reason = review(request)
    ctx.logger.info("order approved", extra={"orderId": request.orderId})
    return Approval(orderId=request.orderId, approved=True, reviewer="approval-policy", reason=reason)
