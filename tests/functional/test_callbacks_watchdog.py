"""The watchdog and heartbeats: the outcome arrives before the Lambda dies, once, and nothing after it."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest

from sfn_workers import CallbackDeliveryError, TaskContext, WorkerTimeout
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import (
    callback_threads,
    handler_of,
    wait_for_no_callback_threads,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


# -- watchdog ----------------------------------------------------------------------------------


def test_watchdog_reports_worker_timeout_while_the_function_still_runs(tokens: MemoryTokens) -> None:
    # GIVEN a function that hangs until released, in a Lambda with 0.5 s left and a 0.3 s margin
    release = threading.Event()

    def hang(payload: dict[str, Any]) -> dict[str, Any]:
        release.wait(10)
        return {"late": True}

    token = tokens.issue()
    handler = handler_of(hang, timeout_margin_ms=300)
    invocation = threading.Thread(target=handler, args=({"taskToken": token}, FakeLambdaContext(0.5)))
    started = time.monotonic()
    invocation.start()
    # WHEN the margin is reached, THEN WorkerTimeout is reported while the function still runs
    wait_until(lambda: tokens.outcomes[token])
    assert time.monotonic() - started < 0.5  # before the Lambda's end
    assert invocation.is_alive()
    outcome = tokens.outcome(token)
    assert outcome.error == "WorkerTimeout"
    cause = json.loads(outcome.cause or "{}")
    # the 300 ms margin shrank to a quarter of the 0.5 s the invocation started with
    margin = re.search(r"still running (\d+) ms before the Lambda timeout", cause["errorMessage"])
    assert margin is not None and 100 <= int(margin.group(1)) <= 125
    # the cause shows where the function was stuck
    assert any("in hang" in frame and "release.wait" in frame for frame in cause["stackTrace"])
    release.set()
    invocation.join(5)
    assert tokens.refused == []


def test_function_returning_after_the_watchdog_is_dropped(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    # GIVEN a function that finishes after the watchdog fired but before the Lambda's end
    def slow(payload: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.85)
        return {"late": True}

    token = tokens.issue()
    # WHEN it returns (the watchdog fires at 0.75 s: 1 s less the 250 ms margin)
    result = handler_of(slow, timeout_margin_ms=250)({"taskToken": token}, FakeLambdaContext(1.0))
    # THEN only the watchdog's WorkerTimeout was reported: the late success was never sent
    assert result is None
    assert tokens.outcome(token).error == "WorkerTimeout"
    assert [c.action for c in sfn_endpoint.calls] == ["SendTaskFailure"]


def test_function_raising_after_the_watchdog_is_dropped_too(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    def slow(payload: dict[str, Any]) -> None:
        time.sleep(0.85)
        raise RuntimeError("too late")

    token = tokens.issue()
    handler_of(slow, timeout_margin_ms=250)({"taskToken": token}, FakeLambdaContext(1.0))
    assert tokens.outcome(token).error == "WorkerTimeout"
    assert len(sfn_endpoint.calls) == 1


def test_the_watchdog_does_not_fire_in_a_later_warm_invocation(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    # GIVEN a quick invocation whose watchdog would have fired 0.2 s later
    def quick(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        return {"n": payload["n"]}

    handler = handler_of(quick, timeout_margin_ms=100)
    first = tokens.issue()
    handler({"taskToken": first, "n": 1}, FakeLambdaContext(0.3))
    assert wait_for_no_callback_threads() == []  # they end with the invocation
    # WHEN a warm invocation runs past that moment
    second = tokens.issue()
    handler({"taskToken": second, "n": 2}, FakeLambdaContext(5))
    time.sleep(0.3)
    # THEN each token has its own single success, and no WorkerTimeout was ever sent
    assert tokens.outcome(first).json() == {"n": 1}
    assert tokens.outcome(second).json() == {"n": 2}
    assert [c.action for c in sfn_endpoint.calls] == ["SendTaskSuccess", "SendTaskSuccess"]


def test_exactly_one_outcome_when_the_function_ends_right_at_the_watchdog(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN functions that end within a few ms of the watchdog's firing, many times over
    def racer(payload: dict[str, Any]) -> dict[str, Any]:
        time.sleep(payload["sleep"])
        return {}

    handler = handler_of(racer, timeout_margin_ms=100)
    issued = []
    for i in range(12):
        token = tokens.issue()
        issued.append(token)
        handler({"taskToken": token, "sleep": 0.1 + (i - 6) * 0.002}, FakeLambdaContext(0.2))
    # THEN every token got exactly one outcome, one way or the other, and nothing was refused
    kinds = [tokens.outcome(token).kind for token in issued]
    assert set(kinds) <= {"success", "failure"}
    assert tokens.refused == []
    assert len(sfn_endpoint.calls) == len(issued)


# -- heartbeats --------------------------------------------------------------------------------


def test_heartbeats_are_sent_while_the_function_runs_and_none_after_the_outcome(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    def slow(payload: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.35)
        return {"done": True}

    token = tokens.issue()
    handler_of(slow, heartbeat_seconds=0.1)({"taskToken": token}, FakeLambdaContext(5))
    time.sleep(0.25)  # a stray heartbeat thread would have sent more by now
    actions = [c.action for c in sfn_endpoint.calls]
    assert 2 <= tokens.heartbeats[token] <= 4
    assert actions[-1] == "SendTaskSuccess"
    assert actions.count("SendTaskSuccess") == 1
    assert tokens.refused == []


def test_ctx_heartbeat_sends_one_on_demand(tokens: MemoryTokens) -> None:
    def beats(payload: dict[str, Any], ctx: TaskContext) -> dict[str, int]:
        for _ in range(3):
            ctx.heartbeat()
        return {"beats": 3}

    token = tokens.issue()
    handler_of(beats)({"taskToken": token}, FakeLambdaContext(5))
    assert tokens.heartbeats[token] == 3
    assert tokens.outcome(token).json() == {"beats": 3}


def test_ctx_heartbeat_answered_task_timed_out_stops_the_work(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> None:
    # GIVEN a task whose HeartbeatSeconds passes while the function works
    seen: list[BaseException] = []
    steps: list[int] = []

    def work(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        for step in range(5):
            if step == 2:
                tokens.close(ctx.token or "")  # Step Functions times the task out
            try:
                ctx.heartbeat()
            except WorkerTimeout as exc:
                seen.append(exc)
                raise
            steps.append(step)
        return {}

    token = tokens.issue()
    # WHEN the function heartbeats, THEN ctx.heartbeat() raises WorkerTimeout and the work stops
    assert handler_of(work)({"taskToken": token}, FakeLambdaContext(5)) is None
    assert steps == [0, 1]
    assert len(seen) == 1 and "TaskTimedOut" in str(seen[0])
    # and nothing is reported for the closed task: no SendTaskFailure(WorkerTimeout) either
    assert tokens.outcomes[token] == []
    assert [c.action for c in sfn_endpoint.calls] == ["SendTaskHeartbeat"] * 3


def test_background_heartbeat_answered_task_timed_out_drops_the_result(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN background heartbeats, and a task closed by Step Functions after the second one
    token = tokens.issue()
    beats = {"n": 0}

    def close_after_two() -> None:
        beats["n"] += 1
        if beats["n"] == 2:
            tokens.close(token)

    tokens.on_heartbeat(token, close_after_two)
    raised: list[BaseException] = []

    def work(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        # the heartbeat thread ends once a heartbeat learnt that the task is closed
        wait_until(lambda: "sfn-workers-heartbeat" not in callback_threads(), timeout=3)
        try:
            ctx.heartbeat()  # the function is told at its next heartbeat, without another call
        except WorkerTimeout as exc:
            raised.append(exc)
        return {"result": "dropped"}

    # WHEN the function then returns
    handler_of(work, heartbeat_seconds=0.05)({"taskToken": token}, FakeLambdaContext(5))
    # THEN nothing is reported after the closing answer, and ctx.heartbeat() raised
    assert tokens.outcomes[token] == []
    assert [c.code for c in sfn_endpoint.calls] == [None, None, "TaskTimedOut"]
    assert len(raised) == 1


def test_ctx_heartbeat_after_the_watchdog_fired_raises_worker_timeout(tokens: MemoryTokens) -> None:
    raised: list[BaseException] = []

    def late(payload: dict[str, Any], ctx: TaskContext) -> None:
        wait_until(lambda: tokens.outcomes[ctx.token or ""], timeout=3)
        try:
            ctx.heartbeat()
        except WorkerTimeout as exc:
            raised.append(exc)
            raise

    token = tokens.issue()
    handler_of(late, timeout_margin_ms=400)({"taskToken": token}, FakeLambdaContext(0.5))
    assert tokens.outcome(token).error == "WorkerTimeout"
    assert len(raised) == 1
    assert tokens.heartbeats[token] == 0


def test_watchdog_report_undeliverable_makes_the_handler_raise_once_the_function_returns(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN Step Functions answering 500 to everything, and a function outliving the watchdog
    sfn_endpoint.inject("*", Fault.internal_failure(), times=None)

    def slow(payload: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.85)
        return {}

    token = tokens.issue()
    # WHEN the function returns before the Lambda's end, THEN the handler raises for Lambda to retry
    with pytest.raises(CallbackDeliveryError, match="SendTaskFailure failed"):
        handler_of(slow, timeout_margin_ms=250)({"taskToken": token}, FakeLambdaContext(1.0))
    assert tokens.outcomes[token] == []
    assert {c.action for c in sfn_endpoint.calls} == {"SendTaskFailure"}  # the late success was not sent


def test_a_one_second_lambda_returning_at_once_is_never_a_worker_timeout(tokens: MemoryTokens) -> None:
    # GIVEN the default 1,500 ms margin and a Lambda with 1 s left (a 1 s timeout), warm: the first
    # call creates the clients (the watchdog's, with timeouts that fit its margin), as a cold start would
    handler = handler_of(lambda payload: {"n": payload["n"]})
    first = tokens.issue()
    handler({"taskToken": first, "n": -1}, FakeLambdaContext(5.0))
    assert tokens.outcome(first).json() == {"n": -1}
    for n in range(5):
        token = tokens.issue()
        # WHEN the function returns in microseconds
        handler({"taskToken": token, "n": n}, FakeLambdaContext(1.0))
        # THEN its output is reported: the margin shrank to a quarter of the second
        assert tokens.outcome(token).json() == {"n": n}
