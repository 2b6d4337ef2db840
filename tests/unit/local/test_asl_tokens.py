"""The .waitForTaskToken pattern: token in $$.Task.Token, SendTask* answers, heartbeats, timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sfn_workers.local.asl import TokenBroker, VirtualClock
from sfn_workers.local.token_backend import ApiError

from .asl_stubs import Functions, events, execute

T0 = datetime(2024, 1, 1, tzinfo=UTC)
RESOURCE = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"


def waiting_task(**extra: Any) -> dict[str, Any]:
    state = {
        "Type": "Task",
        "Resource": RESOURCE,
        "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token", "order.$": "$.order"}},
        "End": True,
        **extra,
    }
    return {"StartAt": "Wait", "States": {"Wait": state}}


def answering(broker: TokenBroker, answer: Any, delay: float = 0.05) -> tuple[Functions, list[str]]:
    """A service stub that receives the token and answers it from another thread, later."""
    tokens: list[str] = []
    fns = Functions()

    def send(params: Any, context: Mapping[str, Any]) -> Any:
        token = params["MessageBody"]["token"]
        assert context["Task"]["Token"] == token
        tokens.append(token)
        threading.Timer(delay, answer, args=(token,)).start()
        return {"MessageId": "m-1"}

    fns.services[RESOURCE] = send
    return fns, tokens


def test_send_task_success_completes_the_task_with_its_output() -> None:
    broker = TokenBroker()
    fns, tokens = answering(broker, lambda t: broker.send_task_success(t, '{"approved": true}'))
    r = execute(waiting_task(TimeoutSeconds=3600), {"order": 7}, fns, tokens=broker, token_grace_seconds=2.0)
    assert r.status == "SUCCEEDED" and r.output == {"approved": True}
    assert len(tokens[0]) > 100
    assert events(r, "TaskSubmitted")[0]["taskSubmittedEventDetails"]["output"] == '{"MessageId":"m-1"}'
    # AND the token is closed afterwards
    with pytest.raises(ApiError) as err:
        broker.send_task_success(tokens[0], "{}")
    assert err.value.code == "TaskDoesNotExist"


def test_send_task_failure_fails_the_task_with_its_error() -> None:
    broker = TokenBroker()
    fns, _ = answering(broker, lambda t: broker.send_task_failure(t, "Rejected", "no stock"))
    r = execute(waiting_task(), {"order": 1}, fns, tokens=broker, token_grace_seconds=2.0)
    assert (r.status, r.error, r.cause) == ("FAILED", "Rejected", "no stock")


def test_nobody_answering_times_out_in_virtual_time_and_the_token_then_says_timed_out() -> None:
    broker = TokenBroker()
    fns, tokens = answering(broker, lambda t: None)
    started = time.monotonic()
    r = execute(waiting_task(TimeoutSeconds=86_400), {"order": 1}, fns, clock=VirtualClock(T0), tokens=broker)
    assert r.status == "FAILED" and r.error == "States.Timeout"
    assert r.stop - r.start == timedelta(days=1)
    assert time.monotonic() - started < 2
    assert events(r, "TaskTimedOut")
    with pytest.raises(ApiError) as err:
        broker.send_task_success(tokens[0], "{}")
    assert err.value.code == "TaskTimedOut"


def test_missing_heartbeat_is_a_heartbeat_timeout() -> None:
    broker = TokenBroker()
    fns, _ = answering(broker, lambda t: None)
    r = execute(
        waiting_task(TimeoutSeconds=600, HeartbeatSeconds=60), {"order": 1}, fns, clock=VirtualClock(T0), tokens=broker
    )
    assert r.error == "States.HeartbeatTimeout"
    assert r.stop - r.start == timedelta(seconds=60)


def test_heartbeats_keep_the_task_alive_until_success() -> None:
    broker = TokenBroker()

    def beat_then_succeed(token: str) -> None:
        for _ in range(3):
            broker.send_task_heartbeat(token)
            time.sleep(0.01)
        broker.send_task_success(token, '"done"')

    fns, _ = answering(broker, beat_then_succeed)
    r = execute(waiting_task(HeartbeatSeconds=60), {"order": 1}, fns, tokens=broker, token_grace_seconds=2.0)
    assert r.output == "done"


def test_unknown_and_malformed_tokens_are_invalid() -> None:
    broker = TokenBroker()
    for token in ("nope", ""):
        with pytest.raises(ApiError) as err:
            broker.send_task_success(token, "{}")
        assert err.value.code == "InvalidToken"


def test_output_that_is_not_json_is_invalid_output() -> None:
    broker = TokenBroker()
    ticket = broker.issue()
    with pytest.raises(ApiError) as err:
        broker.send_task_success(ticket.token, "{not json")
    assert err.value.code == "InvalidOutput"
    broker.send_task_success(ticket.token, "1")  # still open after a refused call
    assert ticket.output == 1


def test_a_stopped_execution_closes_its_token() -> None:
    broker = TokenBroker()
    from .asl_stubs import execution

    tokens: list[str] = []
    fns = Functions()

    def send_token(params: Any, ctx: Any) -> dict[str, Any]:
        tokens.append(params["MessageBody"]["token"])
        return {}

    fns.services[RESOURCE] = send_token
    ex = execution(waiting_task(), {"order": 1}, fns, tokens=broker)
    threading.Timer(0.2, ex.stop).start()
    r = ex.run()
    assert r.status == "ABORTED"
    with pytest.raises(ApiError) as err:
        broker.send_task_success(tokens[0], "{}")
    assert err.value.code == "TaskDoesNotExist"


def test_the_broker_remembers_a_bounded_number_of_closed_tokens() -> None:
    broker = TokenBroker(remember_closed=2)
    tickets = [broker.issue() for _ in range(3)]
    for t in tickets:
        broker.close(t, "timed_out")
    with pytest.raises(ApiError) as err:
        broker.send_task_success(tickets[0].token, "{}")
    assert err.value.code == "InvalidToken"  # forgotten: the oldest beyond the bound
    with pytest.raises(ApiError) as err:
        broker.send_task_success(tickets[2].token, "{}")
    assert err.value.code == "TaskTimedOut"


def test_many_executions_share_one_broker_and_each_gets_its_own_answer() -> None:
    # GIVEN 40 executions running at once, each waiting on a token answered from another thread
    broker = TokenBroker()
    fns, _ = answering(broker, lambda t: broker.send_task_success(t, f'{{"token_tail": "{t[-6:]}"}}'), delay=0.01)
    from .asl_stubs import execution

    results: list[Any] = [None] * 40

    def run(i: int) -> None:
        results[i] = execution(waiting_task(), {"order": i}, fns, tokens=broker).run()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # THEN every one succeeded with the answer sent to its own token
    assert all(r is not None and r.status == "SUCCEEDED" for r in results)
    for r in results:
        sent = json.loads(events(r, "TaskScheduled")[0]["taskScheduledEventDetails"]["parameters"])
        assert r.output == {"token_tail": sent["MessageBody"]["token"][-6:]}
