"""ApprovalDecision: a person's decision on a waiting approval (Lambda function URL, IAM auth).

``POST {"approvalId": ..., "approved": true|false, "reviewer": ..., "reason": ...}``. The request
is claimed in DynamoDB (which takes its task token out in the same conditional write), then the
ManualApproval step is answered: ``report_success`` with the :class:`Approval`, or
``report_failure("OrderRejected", ...)``, which the state's Catch routes to ApprovalRejected.

| answer | when |
|---|---|
| 200 | the step was answered |
| 400 | the body is not a decision (pydantic's messages, without the values) |
| 404 | no request has this approval id |
| 405 | not a POST |
| 409 | the request was decided already (a second click, another reviewer) |
| 410 | the step is over: the request expired, or Step Functions closed the task (it timed out) |
| 503 | Step Functions could not be reached; the request is released, so the decision can be sent again |
"""

from __future__ import annotations

import base64
import json
import os
from typing import Annotated, Any

from approval_store import AlreadyDecided, Approval, Expired, Unknown, claim, release
from order_models import Strict
from pydantic import StringConstraints
from pydantic import ValidationError as PydanticValidationError

from sfn_workers import CallbackDeliveryError, TaskContext, report_failure, report_success, task

APPROVALS_TABLE = os.environ.get("APPROVALS_TABLE", "")

ApprovalId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class Decision(Strict):
    approvalId: ApprovalId
    approved: bool
    reviewer: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""


def respond(status: int, **body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def parse(event: dict[str, Any]) -> Decision:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return Decision.model_validate_json(body)


def problems(exc: PydanticValidationError) -> list[str]:
    # The values are left out: a body may hold anything, and answers end up in logs.
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


def answer(decision: Decision, token: str, orderId: str) -> bool:
    """Answer the ManualApproval step; False when Step Functions says it is closed already."""
    if decision.approved:
        approval = Approval(orderId=orderId, approved=True, reviewer=decision.reviewer, reason=decision.reason)
        return report_success(token, approval, offload=False, clients=handler.task.clients)
    cause = f"rejected by {decision.reviewer}" + (f": {decision.reason}" if decision.reason else "")
    return report_failure(token, "OrderRejected", cause, clients=handler.task.clients)


@task(offload=False)
def handler(event: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    if method != "POST":
        return respond(405, message="POST a decision")
    try:
        decision = parse(event)
    except PydanticValidationError as exc:
        return respond(400, message="not a decision", problems=problems(exc))
    except (ValueError, UnicodeDecodeError):
        return respond(400, message="the body is not JSON")
    dynamodb = handler.task.clients.get("dynamodb")
    verdict = "approved" if decision.approved else "rejected"
    try:
        claimed = claim(dynamodb, APPROVALS_TABLE, decision.approvalId, f"{verdict} by {decision.reviewer}")
    except Unknown:
        return respond(404, message="no approval request has this id")
    except AlreadyDecided as exc:
        return respond(409, message="this approval request was decided already", decision=exc.decision)
    except Expired:
        return respond(410, message="this approval request has expired")
    keys = {"orderId": claimed.request.orderId, "approvalId": decision.approvalId, "decision": verdict}
    try:
        answered = answer(decision, claimed.token, claimed.request.orderId)
    except CallbackDeliveryError:
        release(dynamodb, APPROVALS_TABLE, decision.approvalId, claimed.token)
        ctx.logger.exception("decision not delivered; the request is open again", extra=keys)
        return respond(503, message="Step Functions could not be reached; send the decision again")
    if not answered:
        ctx.logger.warning("decision too late: the approval step is closed", extra=keys)
        return respond(410, message="the approval step is over (it timed out, or the order was stopped)")
    ctx.logger.info("decision delivered", extra=keys)
    return respond(200, approvalId=decision.approvalId, orderId=claimed.request.orderId, decision=verdict)
