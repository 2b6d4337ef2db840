"""Pure logic of callbacks: the once-only guard, SQS record parsing, SendTaskFailure's limits."""

from __future__ import annotations

import json
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from sfn_workers.callbacks import Delivery, _Guard
from sfn_workers.errors import CAUSE_LIMIT, ERROR_LIMIT, TaskFailure, describe
from sfn_workers.sources import Mode, classify
from sfn_workers.sqs import sqs_records

# -- the guard ---------------------------------------------------------------------------------


def race(guard: _Guard, claimants: int) -> list[str]:
    """``claimants`` threads claim at the same moment; returns the names that won."""
    start = threading.Barrier(claimants)
    wins: list[str] = []

    def claim(name: str) -> None:
        start.wait()
        if guard.claim(name):
            wins.append(name)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(claimants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins


def test_exactly_one_of_many_racing_claimants_owns_the_outcome() -> None:
    for _ in range(50):
        guard = _Guard()
        wins = race(guard, 8)
        assert len(wins) == 1
        assert guard.owner == wins[0]


def test_no_heartbeat_starts_once_the_outcome_is_claimed() -> None:
    guard = _Guard()
    assert guard.begin_heartbeat()
    guard.end_heartbeat()
    assert guard.claim("main")
    assert not guard.begin_heartbeat()


def test_the_outcome_waits_for_a_heartbeat_in_flight() -> None:
    # GIVEN a heartbeat in flight for 0.1 s
    guard = _Guard()
    assert guard.begin_heartbeat()
    threading.Timer(0.1, guard.end_heartbeat).start()
    # WHEN the outcome is claimed, THEN claiming does not wait but sending does
    assert guard.claim("main")
    started = time.monotonic()
    guard.wait_quiet(timeout=5)
    assert time.monotonic() - started >= 0.05


def test_settle_publishes_the_delivery_to_waiters() -> None:
    guard = _Guard()
    guard.claim("watchdog")
    threading.Timer(0.02, guard.settle, args=(Delivery.SENT,)).start()
    assert guard.settled.wait(5)
    assert guard.delivery is Delivery.SENT


# -- SQS records -------------------------------------------------------------------------------


def sqs_event(*bodies: object) -> dict[str, object]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": body, "eventSource": "aws:sqs"} for i, body in enumerate(bodies, start=1)
        ]
    }


def test_records_are_read_with_their_token_plain_or_the_reason_they_cannot_run() -> None:
    event = sqs_event(
        json.dumps({"taskToken": "tok-1", "a": 1}),
        "not json",
        json.dumps([1]),
        json.dumps({"a": 1}),
        json.dumps({"taskToken": ""}),
        None,
        "[" * 100_000,
    )
    assert classify(event, "taskToken") is Mode.SQS_BATCH
    records = sqs_records(event, "taskToken")
    assert [(r.message_id, r.token) for r in records][:1] == [("m1", "tok-1")]
    assert records[0].body == {"taskToken": "tok-1", "a": 1} and records[0].problem is None
    # Plain messages (no token) run as in direct mode: the parsed body, or its text if not JSON.
    plain = [(r.body, r.token, r.problem) for r in records[1:4]]
    assert plain == [("not json", None, None), ([1], None, None), ({"a": 1}, None, None)]
    assert records[6].body == "[" * 100_000 and records[6].problem is None
    assert "not a task token" in str(records[4].problem)
    assert "no body" in str(records[5].problem)


@given(st.text(max_size=200))
def test_no_body_makes_record_parsing_raise(body: str) -> None:
    (record,) = sqs_records(sqs_event(body), "taskToken")
    assert record.token is None or record.problem is None


# -- SendTaskFailure's limits, which moto does not enforce -------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    error=st.text(min_size=1, max_size=600),
    cause=st.text(max_size=40_000) | st.just('"\\\u2028' * 12_000),
)
def test_described_failures_always_fit_send_task_failure(error: str, cause: str) -> None:
    try:
        raise TaskFailure(error, cause)
    except TaskFailure as exc:
        name, document = describe(exc)
    assert 1 <= len(name) <= ERROR_LIMIT
    assert len(document) <= CAUSE_LIMIT
    parsed = json.loads(document)
    assert parsed["errorType"] == name
    assert isinstance(parsed["stackTrace"], list)


# -- the Step Functions client -----------------------------------------------------------------


def test_the_step_functions_client_leaves_retries_to_the_callbacks() -> None:
    # botocore's own backoff knows no Lambda deadline: one HTTP request per call, retried by callbacks.py
    from sfn_workers._aws import Clients

    config = Clients().get("stepfunctions").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.read_timeout <= 5
