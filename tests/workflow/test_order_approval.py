"""The sample's ManualApproval is a person: the request is stored under an approval id and announced
on SNS, and a decision sent to ApprovalDecision (the same function as on AWS) answers the step.

Every path on the local runner and its virtual clock: approve, reject, a decision for an unknown
id, a second decision, and a request nobody answers.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import Answer, Approvals, LocalRunner, run_execution
from sfn_workers.local.approvals import decision_event, load_answers
from sfn_workers.report import handoff_id
from tests.workflow.test_order_workflow import TEMPLATE, order, path_of

pytestmark = pytest.mark.skipif(not TEMPLATE.is_file(), reason="the sample template is not there")

EXPENSIVE = 60_000  # 2 x 600.00 USD: over the approval threshold


@pytest.fixture(scope="module")
def runner() -> Iterator[LocalRunner]:
    with LocalRunner(TEMPLATE) as local:
        yield local


@pytest.fixture
def notifications(runner: LocalRunner) -> Iterator[Any]:
    """An SQS queue subscribed to the approval topic: what a reviewer would be sent."""
    sqs, sns = runner.emulator.client("sqs"), runner.emulator.client("sns")
    name = f"reviewers-{secrets.token_hex(4)}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if "ApprovalTopic" in t["TopicArn"])
    subscription = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    yield lambda: [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    sqs.delete_queue(QueueUrl=url)


def approvals_table(runner: LocalRunner) -> list[dict[str, Any]]:
    name = runner.template.resources["ApprovalsTable"].name  # type: ignore[union-attr]
    items: list[dict[str, Any]] = runner.emulator.client("dynamodb").scan(TableName=name)["Items"]
    return items


def approval_token(result: Any) -> str:
    """The token ManualApproval's Task handed its worker (in its TaskScheduled parameters)."""
    [scheduled] = [
        e
        for e in result.history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"
    ]
    token: str = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"]["taskToken"]
    return token


def decide(runner: LocalRunner, approval_id: str, approved: bool = True) -> tuple[int, Any]:
    function = runner.function_for("ApprovalDecisionFunction")
    assert function is not None
    reply = function.invoke(decision_event(approval_id, Answer(approved=approved, reviewer="bob")))
    return reply["statusCode"], json.loads(reply["body"])


def test_an_approved_order_goes_on_with_the_reviewers_decision(runner: LocalRunner, notifications: Any) -> None:
    approvals = Approvals.of({"ManualApproval": Answer(approved=True, reviewer="ann", reason="known customer")})

    result = runner.run(order("o-approve", price=EXPENSIVE), approvals=approvals)

    # THEN the step took the decision as its result and the order completed
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output["approval"] == {
        "orderId": "o-approve",
        "approved": True,
        "reviewer": "ann",
        "reason": "known customer",
    }
    assert path_of(result)[-1] == "OrderComplete"
    [response] = approvals.responses
    assert (response.state, response.status, response.body["decision"]) == ("ManualApproval", 200, "approved")
    # AND the reviewers were told the approval id, never the token
    token = approval_token(result)
    [message] = [json.loads(body) for body in notifications()]
    assert message["approvalId"] == response.body["approvalId"]
    assert message["orderId"] == "o-approve"
    assert token not in json.dumps(message)
    # AND the stored request kept no token once decided
    [item] = [i for i in approvals_table(runner) if i["approvalId"]["S"] == message["approvalId"]]
    assert "taskToken" not in item and item["decision"]["S"] == "approved by ann"


def test_a_rejected_order_fails_as_order_rejected_with_the_reviewers_reason(runner: LocalRunner) -> None:
    approvals = {"ManualApproval": Answer(approved=False, reviewer="ann", reason="card looks stolen")}

    result = runner.run(order("o-reject", price=EXPENSIVE), approvals=approvals)

    assert result.status == "FAILED"
    assert result.error == "OrderRejected"
    assert path_of(result)[-2:] == ["ManualApproval", "ApprovalRejected"]
    failed = next(e for e in result.history if e["type"] == "TaskFailed")
    assert failed["taskFailedEventDetails"]["cause"] == "rejected by ann: card looks stolen"


def test_a_second_decision_is_told_it_was_decided_and_changes_nothing(runner: LocalRunner) -> None:
    approvals = Approvals.of({"ManualApproval": Answer(approved=True, reviewer="ann", times=2)})

    result = runner.run(order("o-twice", price=EXPENSIVE), approvals=approvals)

    assert result.status == "SUCCEEDED", result.cause
    assert [r.status for r in approvals.responses] == [200, 409]
    assert approvals.responses[1].body["decision"] == "approved by ann"
    # and a contrary decision afterwards is refused the same way
    status, body = decide(runner, approvals.responses[0].body["approvalId"], approved=False)
    assert (status, body["decision"]) == (409, "approved by ann")


def test_a_decision_for_an_unknown_approval_id_is_404_and_a_malformed_one_400(runner: LocalRunner) -> None:
    assert decide(runner, secrets.token_hex(16))[0] == 404
    status, body = decide(runner, "not-an-id")
    assert status == 400
    assert any(problem.startswith("approvalId") for problem in body["problems"])


def test_an_approval_nobody_answers_times_out_in_virtual_time_and_a_late_decision_is_410(runner: LocalRunner) -> None:
    # WHEN no reviewer answers
    result = runner.run(order("o-silent", price=EXPENSIVE))

    # THEN after the step's HeartbeatSeconds (a day, simulated) the order fails as ApprovalTimedOut
    assert result.status == "FAILED"
    assert result.error == "ApprovalTimedOut"
    assert path_of(result)[-2:] == ["ManualApproval", "ApprovalTimedOut"]
    timed_out = next(e for e in result.history if e["type"] == "TaskTimedOut")
    assert timed_out["taskTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"
    assert result.stop - result.start >= timedelta(days=1)
    # AND a decision that comes after that is told the step is over, and the request stays open to nobody
    status, body = decide(runner, handoff_id(approval_token(result)))
    assert status == 410 and "over" in body["message"]


def test_run_execution_takes_the_answers_of_an_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ManualApproval": {"approved": True, "reviewer": "carol"}}), encoding="utf-8")

    result = run_execution(TEMPLATE, order("o-file", price=EXPENSIVE), approvals=load_answers(answers))

    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output["approval"]["reviewer"] == "carol"


def test_an_answer_is_true_false_or_an_object_with_approved() -> None:
    assert Answer.of(True) == Answer(approved=True)
    assert Answer.of({"approved": False, "reason": "no"}) == Answer(approved=False, reason="no")
    with pytest.raises(ValueError, match="unknown answer fields"):
        Answer.of({"approved": True, "colour": "red"})
    with pytest.raises(ValueError):
        Answer.of({"reviewer": "ann"})
