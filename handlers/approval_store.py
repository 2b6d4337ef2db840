"""The approval requests waiting for a person, in DynamoDB (shared by ManualApproval and ApprovalDecision).

One item per request, keyed by its approval id (``sfn_workers.report.handoff_id`` of the task
token: opaque, and the same for a retried ManualApproval). The item holds the token until a
decision claims it; the claim removes the token in the same conditional write, so two decisions
can never both answer. The item stays (without its token) until DynamoDB's TTL removes it after
``expiresAt``, so that a second decision is told "already decided" rather than "unknown".
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from order_models import Cents, Currency, OrderId, Strict


class ApprovalRequest(Strict):
    """What ManualApproval's state passes (its Payload less the token)."""

    orderId: OrderId
    customerId: str
    totalCents: Cents
    currency: Currency


class Approval(Strict):
    """ManualApproval's result when approved (its ResultPath is ``$.approval``)."""

    orderId: OrderId
    approved: bool
    reviewer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request a decision has taken: its token (now removed from the table) and what was asked."""

    token: str
    request: ApprovalRequest


class Unknown(Exception):
    """No request has this approval id."""


class AlreadyDecided(Exception):
    """Another decision took this request first."""

    def __init__(self, decision: str) -> None:
        super().__init__(decision)
        self.decision = decision


class Expired(Exception):
    """The request is past its expiry: the approval step has timed out."""


def store(dynamodb: Any, table: str, approval_id: str, token: str, request: ApprovalRequest, ttl_s: int) -> int:
    """Keep the request until ``ttl_s`` from now; returns its expiry (epoch seconds).

    Storing the same approval id again (a retried invocation) keeps the first item.
    """
    now = int(time.time())
    expires = now + ttl_s
    # A retry of the same hand-off finds the item there: the first one stands.
    with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName=table,
            Item={
                "approvalId": {"S": approval_id},
                "taskToken": {"S": token},
                "request": {"S": request.model_dump_json()},
                "createdAt": {"N": str(now)},
                "expiresAt": {"N": str(expires)},
            },
            ConditionExpression="attribute_not_exists(approvalId)",
        )
    return expires


def claim(dynamodb: Any, table: str, approval_id: str, decision: str) -> Claimed:
    """Take the request's token for one decision, or say why not (Unknown, AlreadyDecided, Expired)."""
    now = int(time.time())
    try:
        old = dynamodb.update_item(
            TableName=table,
            Key={"approvalId": {"S": approval_id}},
            UpdateExpression="SET decision = :d, decidedAt = :now REMOVE taskToken",
            ConditionExpression="attribute_exists(taskToken) AND expiresAt > :now",
            ExpressionAttributeValues={":d": {"S": decision}, ":now": {"N": str(now)}},
            ReturnValues="ALL_OLD",
        )["Attributes"]
    except dynamodb.exceptions.ConditionalCheckFailedException:
        item = dynamodb.get_item(TableName=table, Key={"approvalId": {"S": approval_id}}, ConsistentRead=True)
        found = item.get("Item")
        if found is None:
            raise Unknown(approval_id) from None
        if "decision" in found:
            raise AlreadyDecided(found["decision"]["S"]) from None
        raise Expired(approval_id) from None
    request = ApprovalRequest.model_validate(json.loads(old["request"]["S"]))
    return Claimed(old["taskToken"]["S"], request)


def release(dynamodb: Any, table: str, approval_id: str, token: str) -> None:
    """Give the token back after a decision that could not be delivered, so it can be sent again."""
    dynamodb.update_item(
        TableName=table,
        Key={"approvalId": {"S": approval_id}},
        UpdateExpression="SET taskToken = :t REMOVE decision, decidedAt",
        ExpressionAttributeValues={":t": {"S": token}},
    )
