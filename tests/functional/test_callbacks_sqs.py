"""SQS batches (sqs:sendMessage.waitForTaskToken -> queue -> Lambda): one task per record.

``batchItemFailures`` must list exactly the records whose outcome could not be reported, so that
SQS redelivers those and only those.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import BaseModel

from sfn_workers import TaskContext
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import handler_of

pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


def record(message_id: str, body: Any) -> dict[str, Any]:
    """An SQS record as Lambda's event source mapping delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:approvals",
        "awsRegion": "us-east-1",
    }


class Job(BaseModel):
    case: str
    n: int = 0


def worker(tokens: MemoryTokens) -> Any:
    """A function whose behaviour each record picks with ``case``."""

    def work(job: Job, ctx: TaskContext) -> dict[str, Any]:
        if job.case == "raise":
            raise ValueError("boom")
        if job.case == "big":
            return {"blob": "x" * 262_144}
        if job.case == "heartbeat-closed":
            assert ctx.token is not None
            tokens.close(ctx.token)  # its HeartbeatSeconds passed
            ctx.heartbeat()  # raises WorkerTimeout: the task is closed
        return {"case": job.case, "n": job.n}

    return work


def failed_ids(response: dict[str, Any]) -> list[str]:
    assert set(response) == {"batchItemFailures"}
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_a_batch_mixing_every_fault_lists_only_the_unreported_records(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN one record per row of the fault matrix
    t = {case: tokens.issue() for case in ("ok", "raise", "invalid", "big", "closed", "throttled", "down", "hb")}
    tokens.close(t["closed"])
    sfn_endpoint.inject("SendTaskSuccess", Fault.throttle(), times=2, when=lambda r: r["taskToken"] == t["throttled"])
    sfn_endpoint.inject("*", Fault.internal_failure(), times=None, when=lambda r: r.get("taskToken") == t["down"])
    event = {
        "Records": [
            record("m-ok", {"taskToken": t["ok"], "case": "ok", "n": 1}),
            record("m-raise", {"taskToken": t["raise"], "case": "raise"}),
            record("m-invalid", {"taskToken": t["invalid"], "case": "invalid", "n": "not a number"}),
            record("m-not-json", "{this is not json"),
            record("m-no-token", {"case": "ok"}),
            record("m-array", [1, 2, 3]),
            record("m-big", {"taskToken": t["big"], "case": "big"}),
            record("m-closed", {"taskToken": t["closed"], "case": "ok"}),
            record("m-throttled", {"taskToken": t["throttled"], "case": "ok", "n": 2}),
            record("m-down", {"taskToken": t["down"], "case": "ok"}),
            record("m-hb", {"taskToken": t["hb"], "case": "heartbeat-closed"}),
        ]
    }
    # WHEN the batch is handled
    response = handler_of(worker(tokens))(event, FakeLambdaContext(10))
    # THEN only the plain records that failed (run as in direct mode: the body does not fit Job) and
    # the one whose outcome could not be delivered are listed; the plain record that fits just ran
    assert failed_ids(response) == ["m-not-json", "m-array", "m-down"]
    # and every other token got exactly its outcome
    assert tokens.outcome(t["ok"]).json() == {"case": "ok", "n": 1}
    assert tokens.outcome(t["raise"]).error == "ValueError"
    assert tokens.outcome(t["invalid"]).error == "ValidationError"
    assert tokens.outcome(t["big"]).error == "PayloadTooLarge"
    assert tokens.outcome(t["throttled"]).json() == {"case": "ok", "n": 2}
    for quiet in ("closed", "down", "hb"):
        assert tokens.outcomes[t[quiet]] == []
    assert tokens.is_open(t["down"])  # SQS redelivers it; the task is still waiting
    assert sorted(code for _, _, code in tokens.refused) == ["TaskTimedOut", "TaskTimedOut"]


def test_payload_is_the_body_less_the_token(tokens: MemoryTokens) -> None:
    seen: list[Any] = []

    def echo(payload: Any) -> Any:
        seen.append(payload)
        return payload

    token = tokens.issue()
    body = {"taskToken": token, "order": {"id": "o-1"}, "sfn_context": {"execution": "e-1", "state": "Approve"}}
    assert failed_ids(handler_of(echo)({"Records": [record("m-1", body)]}, FakeLambdaContext(5))) == []
    assert seen == [{"order": {"id": "o-1"}}]
    assert tokens.outcome(token).json() == {"order": {"id": "o-1"}}


def test_custom_token_field_and_payload_field(tokens: MemoryTokens) -> None:
    def echo(payload: Any) -> Any:
        return payload

    token = tokens.issue()
    body = {"token": token, "input": {"id": "o-2"}, "other": 1}
    handler = handler_of(echo, token_field="token", payload_field="input")
    assert failed_ids(handler({"Records": [record("m-1", body)]}, FakeLambdaContext(5))) == []
    assert tokens.outcome(token).json() == {"id": "o-2"}


def test_when_time_runs_out_the_watchdog_reports_and_later_records_are_left_for_redelivery(
    tokens: MemoryTokens,
) -> None:
    # GIVEN a slow first record that outlives the watchdog, then another record
    def slow(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["case"] == "slow":
            time.sleep(0.85)
        return {}

    first, second = tokens.issue(), tokens.issue()
    event = {
        "Records": [
            record("m-slow", {"taskToken": first, "case": "slow"}),
            record("m-next", {"taskToken": second, "case": "quick"}),
        ]
    }
    # WHEN the batch runs in a Lambda with 1 s left and a 0.25 s margin
    response = handler_of(slow, timeout_margin_ms=250)(event, FakeLambdaContext(1.0))
    # THEN the slow one was reported WorkerTimeout, the next one not started and listed for SQS
    assert tokens.outcome(first).error == "WorkerTimeout"
    assert failed_ids(response) == ["m-next"]
    assert tokens.outcomes[second] == []
    assert tokens.is_open(second)


def test_system_exit_in_a_record_is_reported_then_re_raised(tokens: MemoryTokens) -> None:
    def leave(payload: dict[str, Any]) -> None:
        raise SystemExit(1)

    token = tokens.issue()
    with pytest.raises(SystemExit):
        handler_of(leave)({"Records": [record("m-1", {"taskToken": token})]}, FakeLambdaContext(5))
    assert tokens.outcome(token).error == "SystemExit"


def fifo(message_id: str, body: Any) -> dict[str, Any]:
    return {**record(message_id, body), "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:approvals.fifo"}


def test_a_fifo_batch_stops_at_the_first_failure_and_lists_it_and_all_the_rest(tokens: MemoryTokens) -> None:
    # GIVEN a FIFO batch whose second record (a plain message) fails
    ran: list[str] = []

    def work(job: Job) -> dict[str, Any]:
        ran.append(job.case)
        if job.case == "raise":
            raise ValueError("boom")
        return {"case": job.case}

    first, later = tokens.issue(), tokens.issue()
    event = {
        "Records": [
            fifo("m-1", {"taskToken": first, "case": "one"}),
            fifo("m-2", {"case": "raise"}),
            fifo("m-3", {"taskToken": later, "case": "three"}),
            fifo("m-4", {"case": "four"}),
        ]
    }
    # WHEN the batch runs
    response = handler_of(work)(event, FakeLambdaContext(10))
    # THEN the failure and everything after it is left to SQS, in order, and nothing after it ran
    assert failed_ids(response) == ["m-2", "m-3", "m-4"]
    assert ran == ["one", "raise"]
    assert tokens.outcome(first).json() == {"case": "one"}
    assert tokens.is_open(later) and tokens.outcomes[later] == []


def test_a_fifo_batch_stops_at_an_undeliverable_outcome(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    down, later = tokens.issue(), tokens.issue()
    sfn_endpoint.inject("*", Fault.refuse(), times=None, when=lambda r: r.get("taskToken") == down)
    event = {"Records": [fifo("m-1", {"taskToken": down, "case": "a"}), fifo("m-2", {"taskToken": later, "case": "b"})]}
    response = handler_of(worker(tokens))(event, FakeLambdaContext(10))
    assert failed_ids(response) == ["m-1", "m-2"]
    assert tokens.outcomes[later] == []


def test_plain_records_in_a_standard_queue_run_as_in_direct_mode(tokens: MemoryTokens) -> None:
    # GIVEN plain messages (no token): one fits, one raises, one does not fit the input model
    ran: list[str] = []

    def work(job: Job) -> None:
        ran.append(job.case)
        if job.case == "raise":
            raise ValueError("boom")

    event = {
        "Records": [
            record("m-ok", {"case": "ok"}),
            record("m-raise", {"case": "raise"}),
            record("m-bad", {"n": 1}),
            record("m-after", {"case": "after"}),
        ]
    }
    response = handler_of(work)(event, FakeLambdaContext(10))
    # THEN only the failed ones are listed for redelivery (and the queue's DLQ after maxReceiveCount)
    assert failed_ids(response) == ["m-raise", "m-bad"]
    assert ran == ["ok", "raise", "after"]
