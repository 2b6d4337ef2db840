"""ManualApproval hands its token to a person; ApprovalDecision answers it (moto + the strict SendTask* endpoint).

ManualApproval stores the request under an approval id and announces the id on SNS, sending
nothing to Step Functions; ApprovalDecision claims the request and answers exactly once, with a
clear HTTP-like answer for every other case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from sfn_workers.local.approvals import Answer, decision_event
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.report import handoff_id
from tests.functional.sample_handlers_support import (  # noqa: F401  (fixture)
    FakeLambdaContext,
    HandlerLoader,
    event,
    handlers_fixture,
)

TABLE = "approvals"


@pytest.fixture
def sample(aws: str, sfn_endpoint: SfnEndpoint, handlers: HandlerLoader) -> Iterator[dict[str, Any]]:
    """The approvals table and topic on moto, a reviewers' queue on the topic, and both functions."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "approvalId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "approvalId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="approvals")["TopicArn"]
    queue = sqs.create_queue(QueueName="reviewers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    env = {"APPROVALS_TABLE": TABLE, "APPROVAL_TOPIC_ARN": topic}
    yield {
        "ask": handlers.load("manual_approval", **env),
        "decide": handlers.load("approval_decision", **env),
        "dynamodb": dynamodb,
        "messages": lambda: [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        ],
    }


def ask(sample: dict[str, Any], tokens: MemoryTokens) -> str:
    """ManualApproval runs for a fresh token; returns the token."""
    token = tokens.issue()
    ask: ModuleType = sample["ask"]
    assert ask.handler(dict(event("manual_approval.json"), taskToken=token), FakeLambdaContext()) is None
    return token


def decide(sample: dict[str, Any], approval_id: str, approved: bool = True, reason: str = "ok") -> tuple[int, Any]:
    answer = Answer(approved=approved, reviewer="ann", reason=reason)
    reply = sample["decide"].handler(decision_event(approval_id, answer), FakeLambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def test_manual_approval_stores_the_request_announces_its_id_and_sends_nothing(
    sample: dict[str, Any], tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    token = ask(sample, tokens)

    assert sfn_endpoint.calls == []
    assert tokens.is_open(token)
    [message] = sample["messages"]()
    assert message["approvalId"] == handoff_id(token)
    assert message["orderId"] == "order-1004" and message["totalCents"] == 300000
    assert token not in json.dumps(message)
    [item] = sample["dynamodb"].scan(TableName=TABLE)["Items"]
    assert item["taskToken"]["S"] == token
    assert int(item["expiresAt"]["N"]) - int(item["createdAt"]["N"]) == 259200


def test_manual_approval_that_cannot_notify_fails_the_step_instead_of_waiting(
    sample: dict[str, Any], tokens: MemoryTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample["ask"], "APPROVAL_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    token = ask(sample, tokens)

    outcome = tokens.outcome(token)
    assert outcome.kind == "failure" and outcome.error == "NotFoundException"


def test_an_approval_answers_the_step_once_and_a_second_decision_is_409(
    sample: dict[str, Any], tokens: MemoryTokens
) -> None:
    token = ask(sample, tokens)

    status, body = decide(sample, handoff_id(token), reason="regular customer")
    assert (status, body["decision"], body["orderId"]) == (200, "approved", "order-1004")
    assert tokens.outcome(token).json() == {
        "orderId": "order-1004",
        "approved": True,
        "reviewer": "ann",
        "reason": "regular customer",
    }
    [item] = sample["dynamodb"].scan(TableName=TABLE)["Items"]
    assert "taskToken" not in item

    status, body = decide(sample, handoff_id(token), approved=False)
    assert (status, body["decision"]) == (409, "approved by ann")
    assert len(tokens.outcomes[token]) == 1


def test_a_rejection_fails_the_step_with_order_rejected(sample: dict[str, Any], tokens: MemoryTokens) -> None:
    token = ask(sample, tokens)

    assert decide(sample, handoff_id(token), approved=False, reason="over budget")[0] == 200

    outcome = tokens.outcome(token)
    assert (outcome.kind, outcome.error, outcome.cause) == ("failure", "OrderRejected", "rejected by ann: over budget")


def test_unknown_malformed_and_non_post_requests(sample: dict[str, Any], tokens: MemoryTokens) -> None:
    assert decide(sample, "0" * 32)[0] == 404
    status, body = decide(sample, "ABC")
    assert status == 400 and body["problems"][0].startswith("approvalId")
    not_json = dict(decision_event("0" * 32, Answer(approved=True)), body="{not json")
    assert sample["decide"].handler(not_json, FakeLambdaContext())["statusCode"] == 400
    get = decision_event("0" * 32, Answer(approved=True))
    get["requestContext"]["http"]["method"] = "GET"
    assert sample["decide"].handler(get, FakeLambdaContext())["statusCode"] == 405


def test_a_decision_after_the_step_timed_out_is_410(sample: dict[str, Any], tokens: MemoryTokens) -> None:
    token = ask(sample, tokens)
    tokens.close(token)  # the state's HeartbeatSeconds passed

    status, body = decide(sample, handoff_id(token))

    assert status == 410 and "over" in body["message"]
    assert tokens.outcomes[token] == []


def test_an_expired_request_is_410_without_calling_step_functions(
    sample: dict[str, Any], tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    token = ask(sample, tokens)
    sample["dynamodb"].update_item(
        TableName=TABLE,
        Key={"approvalId": {"S": handoff_id(token)}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    assert decide(sample, handoff_id(token))[0] == 410
    assert sfn_endpoint.calls == []


def test_step_functions_unreachable_is_503_and_the_decision_can_be_sent_again(
    sample: dict[str, Any], tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    token = ask(sample, tokens)
    sfn_endpoint.inject("SendTaskSuccess", Fault.refuse("AccessDeniedException", "not authorized"))

    assert decide(sample, handoff_id(token))[0] == 503
    assert tokens.is_open(token)

    assert decide(sample, handoff_id(token))[0] == 200
    assert tokens.outcome(token).kind == "success"
