"""ManualApproval: an expensive order waits for a person (``lambda:invoke.waitForTaskToken``).

The function hands the task token off (``ctx.hand_off()``: sfn-workers then sends nothing when it
returns), stores the request under an opaque approval id in DynamoDB with an expiry, and
publishes the approval id on SNS. The token never leaves the table: reviewers see the id, and
their decision goes to ApprovalDecision (a function URL with IAM auth), which answers the step.
If storing or publishing fails, the exception is still reported with SendTaskFailure, so the
execution does not wait for an approval nobody was asked for.
"""

from __future__ import annotations

import json
import os

from approval_store import ApprovalRequest, store

from sfn_workers import TaskContext, task
from sfn_workers.report import handoff_id

APPROVALS_TABLE = os.environ.get("APPROVALS_TABLE", "")
APPROVAL_TOPIC_ARN = os.environ.get("APPROVAL_TOPIC_ARN", "")
#: How long a request is kept: the state's TimeoutSeconds (a decision after it is refused anyway).
APPROVAL_TIMEOUT_SECONDS = int(os.environ.get("APPROVAL_TIMEOUT_SECONDS", "259200"))


@task(offload=False)
def handler(request: ApprovalRequest, ctx: TaskContext) -> None:
    token = ctx.hand_off()
    approval_id = handoff_id(token)
    expires = store(
        handler.task.clients.get("dynamodb"), APPROVALS_TABLE, approval_id, token, request, APPROVAL_TIMEOUT_SECONDS
    )
    message = {
        "approvalId": approval_id,
        "orderId": request.orderId,
        "customerId": request.customerId,
        "totalCents": request.totalCents,
        "currency": request.currency,
        "expiresAt": expires,
    }
    handler.task.clients.get("sns").publish(
        TopicArn=APPROVAL_TOPIC_ARN,
        Subject="Order approval needed",
        Message=json.dumps(message),
        MessageAttributes={"orderId": {"DataType": "String", "StringValue": request.orderId}},
    )
    ctx.logger.info("approval requested", extra={"orderId": request.orderId, "approvalId": approval_id})
