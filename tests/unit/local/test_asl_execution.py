"""Whole executions on the interpreter: data flow, errors, Retry/Catch, Map/Parallel, limits, history."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfn_workers.local.asl import MAX_PAYLOAD_BYTES, LambdaError, RealClock, VirtualClock

from .asl_stubs import ARN, Functions, events, execute, execution

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def task(name: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": ARN + name, **extra}


def one(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "S",
        "States": {"S": {**state, "End": True} if state["Type"] not in ("Fail", "Succeed") else state},
    }


def raiser(error_type: str, message: str = "boom") -> Any:
    def fn(_payload: Any) -> Any:
        raise LambdaError(error_type, message, ['  File "h.py", line 1, in handler'])

    return fn


# -- data flow --------------------------------------------------------------------------------------
def test_input_parameters_result_selector_result_path_output_path_in_order() -> None:
    fns = Functions(f=lambda p: {"sum": p["a"] + p["b"], "noise": 1})
    state = task(
        "f",
        InputPath="$.numbers",
        Parameters={"a.$": "$.x", "b.$": "$.y", "who.$": "$$.State.Name"},
        ResultSelector={"total.$": "$.sum"},
        ResultPath="$.numbers.result",
        OutputPath="$.numbers",
    )
    r = execute(one(state), {"numbers": {"x": 2, "y": 3}, "other": True}, fns)
    assert r.status == "SUCCEEDED"
    assert r.output == {"x": 2, "y": 3, "result": {"total": 5}}
    assert fns.calls[0].payload == {"a": 2, "b": 3, "who": "S"}


def test_result_path_null_keeps_the_input() -> None:
    r = execute(one(task("f", ResultPath=None)), {"keep": 1}, Functions(f=lambda p: "ignored"))
    assert r.output == {"keep": 1}


def test_lambda_invoke_returns_the_invoke_response() -> None:
    fns = Functions(f=lambda p: {"echo": p})
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
    }
    r = execute(one(state), {"a": 1}, fns)
    assert r.output["Payload"] == {"echo": {"a": 1}}
    assert r.output["StatusCode"] == 200 and r.output["ExecutedVersion"] == "$LATEST"
    assert {"SdkHttpMetadata", "SdkResponseMetadata"} <= r.output.keys()
    assert [e["type"] for e in r.history][2:5] == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]


def test_lambda_error_gives_error_type_and_lambda_cause() -> None:
    r = execute(one(task("f")), {}, Functions(f=raiser("ValueError", "bad value")))
    assert r.status == "FAILED" and r.error == "ValueError"
    cause = json.loads(r.cause or "")
    assert cause["errorMessage"] == "bad value" and cause["errorType"] == "ValueError"
    assert cause["stackTrace"] and "requestId" in cause
    assert events(r, "LambdaFunctionFailed")[0]["lambdaFunctionFailedEventDetails"]["error"] == "ValueError"


def test_fail_state_error_path_and_cause_path() -> None:
    r = execute(
        one({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('because {}', $.c)"}),
        {"e": "E1", "c": "x"},
    )
    assert (r.status, r.error, r.cause) == ("FAILED", "E1", "because x")


def test_assign_and_variables_in_a_later_state() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"total.$": "$.n", "label": "x"}, "Next": "B"},
            "B": {"Type": "Pass", "Parameters": {"t.$": "$total", "l.$": "$label"}, "End": True},
        },
    }
    assert execute(definition, {"n": 7}).output == {"t": 7, "l": "x"}


def test_jsonata_state_with_arguments_output_and_assign() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": ARN + "f",
                "Arguments": {"n": "{% $states.input.n * 2 %}"},
                "Assign": {"seen": "{% $states.result.n %}"},
                "Output": "{% $states.result.n + 1 %}",
                "Next": "B",
            },
            "B": {"Type": "Pass", "Output": {"out": "{% $states.input %}", "seen": "{% $seen %}"}, "End": True},
        },
    }
    assert execute(definition, {"n": 4}, Functions(f=lambda p: p)).output == {"out": 9, "seen": 8}


# -- errors: Retry / Catch ----------------------------------------------------------------------------
def test_retry_waits_interval_times_backoff_in_virtual_time() -> None:
    # GIVEN a function failing three times, then succeeding
    calls: list[int] = []

    def flaky(_p: Any) -> Any:
        calls.append(1)
        if len(calls) <= 3:
            raise LambdaError("Flaky", "again")
        return "ok"

    state = task("f", Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}])
    started = time.monotonic()
    r = execute(one(state), {}, Functions(f=flaky), clock=VirtualClock(T0))
    # THEN it succeeds after waits of 2, 6 and 18 virtual seconds, taking no real time
    assert r.status == "SUCCEEDED" and r.output == "ok"
    scheduled = [e["timestamp"] for e in events(r, "LambdaFunctionScheduled")]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)] == [2, 6, 18]
    assert time.monotonic() - started < 2


def test_max_delay_caps_the_backoff_and_attempts_run_out() -> None:
    state = task(
        "f",
        Retry=[
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": 10,
                "BackoffRate": 10,
                "MaxDelaySeconds": 50,
                "MaxAttempts": 3,
            }
        ],
    )
    r = execute(one(state), {}, Functions(f=raiser("E")), clock=VirtualClock(T0))
    scheduled = [e["timestamp"] for e in events(r, "LambdaFunctionScheduled")]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)] == [10, 50, 50]
    assert r.status == "FAILED" and r.error == "E"


def test_max_attempts_zero_never_retries() -> None:
    r = execute(one(task("f", Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}])), {}, Functions(f=raiser("E")))
    assert len(events(r, "LambdaFunctionScheduled")) == 1


@pytest.mark.parametrize("seed", range(20))
def test_full_jitter_stays_within_its_bounds(seed: int) -> None:
    state = task(
        "f",
        Retry=[
            {"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 2, "MaxAttempts": 4, "JitterStrategy": "FULL"}
        ],
    )
    r = execute(one(state), {}, Functions(f=raiser("E")), clock=VirtualClock(T0), rng=random.Random(seed))
    scheduled = [e["timestamp"] for e in events(r, "LambdaFunctionScheduled")]
    delays = [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)]
    bounds = [4, 8, 16, 32]
    assert len(delays) == 4
    assert all(0 <= d <= b for d, b in zip(delays, bounds, strict=True))
    assert delays != bounds  # jittered, not the plain backoff


def test_catch_merges_error_output_at_result_path() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": task("f", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handled"}], End=True),
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    r = execute(definition, {"keep": 1}, Functions(f=raiser("Boom", "bad")))
    assert r.status == "SUCCEEDED"
    assert r.output["keep"] == 1 and r.output["err"]["Error"] == "Boom"
    assert json.loads(r.output["err"]["Cause"])["errorMessage"] == "bad"


def test_states_runtime_is_never_caught() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Pass", "InputPath": "$.missing", "Next": "X"},
            "X": {"Type": "Pass", "End": True},
        },
    }
    r = execute(definition, {})
    assert r.status == "FAILED" and r.error == "States.Runtime"
    assert "An error occurred while executing the state 'T'" in (r.cause or "")


def test_task_failed_matches_errors_but_not_timeouts() -> None:
    state = task("f", Retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}])
    r = execute(one(state), {}, Functions(f=raiser("Any")))
    assert len(events(r, "LambdaFunctionScheduled")) == 2


# -- limits ----------------------------------------------------------------------------------------
def test_state_output_over_256_kib_is_data_limit_exceeded_and_not_caught_by_states_all() -> None:
    definition = {
        "StartAt": "Big",
        "States": {
            "Big": task("big", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], End=True),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    r = execute(definition, {}, Functions(big=lambda p: "x" * MAX_PAYLOAD_BYTES))
    assert r.status == "FAILED" and r.error == "States.DataLimitExceeded"
    assert "'Big'" in (r.cause or "")


def test_output_exactly_at_the_limit_passes_and_multibyte_text_counts_bytes() -> None:
    at_limit = "x" * (MAX_PAYLOAD_BYTES - 2)  # plus the two quotes
    assert execute(one(task("f")), {}, Functions(f=lambda p: at_limit)).status == "SUCCEEDED"
    over = "é" * (MAX_PAYLOAD_BYTES // 2)  # fits in characters, not in UTF-8 bytes
    assert execute(one(task("f")), {}, Functions(f=lambda p: over)).error == "States.DataLimitExceeded"


def test_data_limit_exceeded_can_be_caught_by_name() -> None:
    definition = {
        "StartAt": "Big",
        "States": {
            "Big": task("big", Catch=[{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}], End=True),
            "Caught": {"Type": "Pass", "Result": "small", "End": True},
        },
    }
    assert execute(definition, {}, Functions(big=lambda p: "x" * MAX_PAYLOAD_BYTES)).output == "small"


# -- time -------------------------------------------------------------------------------------------
def test_a_one_day_wait_takes_no_real_time() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 86_400, "End": True}}}
    started = time.monotonic()
    r = execute(definition, {}, clock=VirtualClock(T0))
    assert r.stop - r.start == timedelta(days=1)
    assert time.monotonic() - started < 1


def test_wait_timestamp_path_waits_until_then() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.at", "End": True}}}
    r = execute(definition, {"at": "2024-01-03T00:00:00Z"}, clock=VirtualClock(T0))
    assert r.stop == datetime(2024, 1, 3, tzinfo=UTC)


def test_execution_timeout_seconds_times_out_in_virtual_time() -> None:
    definition = {
        "TimeoutSeconds": 60,
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}},
    }
    r = execute(definition, {}, clock=VirtualClock(T0))
    assert r.status == "TIMED_OUT" and r.error == "States.Timeout"
    assert r.stop - r.start == timedelta(seconds=60)
    assert r.history[-1]["type"] == "ExecutionTimedOut"


def test_task_timeout_with_the_real_clock_cuts_a_slow_function() -> None:
    state = task("slow", TimeoutSeconds=1, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Late"}])
    definition = {
        "StartAt": "S",
        "States": {"S": {**state, "End": True}, "Late": {"Type": "Pass", "Result": "late", "End": True}},
    }
    r = execute(definition, {}, Functions(slow=lambda p: time.sleep(3)), clock=RealClock())
    assert r.output == "late"
    assert events(r, "LambdaFunctionTimedOut")


# -- Map / Parallel ---------------------------------------------------------------------------------
def _map(max_concurrency: int, processor_state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return one(
        {
            "Type": "Map",
            "MaxConcurrency": max_concurrency,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {**processor_state, "End": True}}},
            **extra,
        }
    )


def test_map_never_runs_more_than_max_concurrency_at_once() -> None:
    # GIVEN a handler that counts overlapping calls; the first three meet at a barrier, so three
    # must be running together before any returns (no sleeps: the result cannot depend on timing)
    lock = threading.Lock()
    running = [0]
    peak = [0]
    started = [0]
    first_three = threading.Barrier(3)

    def work(item: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            started[0] += 1
            meet = started[0] <= 3
        if meet:
            first_three.wait(timeout=30)  # BrokenBarrierError if fewer than 3 can run at once
        with lock:
            running[0] -= 1
        return item * 10

    r = execute(_map(3, task("w")), list(range(12)), Functions(w=work))
    # THEN results keep item order, three ran at once and never more
    assert r.status == "SUCCEEDED"
    assert r.output == [i * 10 for i in range(12)]
    assert peak[0] == 3


def test_map_waits_overlap_in_virtual_time() -> None:
    # GIVEN 6 iterations each waiting 60 s, 2 at a time WHEN run THEN 3 rounds of 60 s pass
    r = execute(_map(2, {"Type": "Wait", "Seconds": 60}), list(range(6)), clock=VirtualClock(T0))
    assert r.status == "SUCCEEDED"
    assert r.stop - r.start == timedelta(seconds=180)


def test_parallel_branches_run_concurrently_in_virtual_time() -> None:
    definition = one(
        {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 30, "End": True}}},
                {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 50, "End": True}}},
            ],
        }
    )
    r = execute(definition, {"x": 1}, clock=VirtualClock(T0))
    assert r.output == [{"x": 1}, {"x": 1}]
    assert r.stop - r.start == timedelta(seconds=50)


def test_map_item_selector_sees_the_context_item() -> None:
    definition = _map(
        1,
        {"Type": "Pass"},
        ItemsPath="$.xs",
        ItemSelector={"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
    )
    assert execute(definition, {"xs": ["a", "b"], "k": 1}).output == [
        {"i": 0, "v": "a", "k": 1},
        {"i": 1, "v": "b", "k": 1},
    ]


def test_map_failure_fails_the_map_with_the_iteration_error() -> None:
    r = execute(
        _map(0, task("f")),
        [1, 2, 3],
        Functions(f=lambda p: (_ for _ in ()).throw(LambdaError("Bad", "x")) if p == 2 else p),
    )
    assert r.status == "FAILED" and r.error == "Bad"
    assert events(r, "MapIterationFailed") and events(r, "MapStateFailed")


def test_tolerated_failures_within_and_beyond_the_threshold() -> None:
    def f(p: Any) -> Any:
        if p % 2:
            raise LambdaError("Odd", "odd")
        return p

    ok = execute(_map(1, task("f"), ToleratedFailureCount=2), [0, 1, 2, 3], Functions(f=f))
    assert ok.status == "SUCCEEDED" and ok.output[0] == 0 and ok.output[1]["Error"] == "Odd"
    bad = execute(_map(1, task("f"), ToleratedFailurePercentage=25), [0, 1, 2, 3], Functions(f=f))
    assert bad.status == "FAILED" and bad.error == "States.ExceedToleratedFailureThreshold"


def test_a_branch_failure_cancels_its_siblings() -> None:
    definition = one(
        {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Slow",
                    "States": {
                        "Slow": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                        "After": task("never", End=True),
                    },
                },
                {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom"}}},
            ],
        }
    )
    fns = Functions(never=lambda p: p)
    r = execute(definition, {}, fns)
    assert r.status == "FAILED" and r.error == "Boom"
    assert fns.calls == []


# -- history ----------------------------------------------------------------------------------------
def test_history_uses_aws_event_names_ids_and_the_listener_sees_each() -> None:
    seen: list[str] = []
    r = execute(one(task("f")), {"a": 1}, Functions(f=lambda p: p), listener=lambda e: seen.append(e["type"]))
    types = [e["type"] for e in r.history]
    assert types == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert seen == types
    assert [e["id"] for e in r.history] == list(range(1, 8))
    assert [e["previousEventId"] for e in r.history] == [0, 0, 2, 3, 4, 5, 6]  # as AWS records them
    assert r.history[1]["stateEnteredEventDetails"] == {
        "name": "S",
        "input": '{"a":1}',
        "inputDetails": {"truncated": False},
    }


def test_context_overrides_and_execution_fields() -> None:
    state = {
        "Type": "Pass",
        "Parameters": {"name.$": "$$.Execution.Name", "sm.$": "$$.StateMachine.Name", "in.$": "$$.Execution.Input"},
    }
    r = execute(one(state), {"q": 1}, name="exec-1", state_machine_name="Orders")
    assert r.output == {"name": "exec-1", "sm": "Orders", "in": {"q": 1}}
    assert r.execution_arn.endswith(":execution:Orders:exec-1")


def test_stop_aborts_a_waiting_execution() -> None:
    ex = execution(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}}}, {}, clock=RealClock()
    )
    threading.Timer(0.1, ex.stop, kwargs={"error": "Stopped", "cause": "by test"}).start()
    started = time.monotonic()
    r = ex.run()
    assert r.status == "ABORTED" and r.error == "Stopped"
    assert time.monotonic() - started < 3
    assert r.history[-1]["type"] == "ExecutionAborted"


def test_a_caught_error_exits_the_state_with_the_catch_output() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": task("f", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "P"}], End=True),
            "P": {"Type": "Pass", "End": True},
        },
    }
    r = execute(definition, {}, Functions(f=raiser("E")))
    types = [e["type"] for e in r.history]
    assert types[types.index("LambdaFunctionFailed") + 1 :][:2] == ["TaskStateExited", "PassStateEntered"]
    exited = events(r, "TaskStateExited")[0]["stateExitedEventDetails"]
    assert json.loads(exited["output"])["e"]["Error"] == "E"


def test_assigned_variables_appear_in_the_exit_event_as_json_text() -> None:
    r = execute(one({"Type": "Pass", "Assign": {"x.$": "$.a", "y": [1]}}), {"a": "v"})
    exited = events(r, "PassStateExited")[0]["stateExitedEventDetails"]
    assert exited["assignedVariables"] == {"x": '"v"', "y": "[1]"}


def test_jsonata_tells_null_from_undefined() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Pass",
                "Output": {"n": "{% $states.input.n %}", "arr": "{% [null, $states.input.n] %}"},
                "End": True,
            }
        },
    }
    assert execute(definition, {"n": None}).output == {"n": None, "arr": [None, None]}
    missing = execute({**definition}, {})
    assert missing.status == "FAILED" and missing.error == "States.QueryEvaluationError"
    assert "returned nothing (undefined)" in (missing.cause or "")


def test_unbounded_map_overlaps_waits_forty_at_a_time_like_aws_inline_map() -> None:
    r = execute(_map(0, {"Type": "Wait", "Seconds": 60}), list(range(100)), clock=VirtualClock(T0))
    assert r.stop - r.start == timedelta(seconds=180)  # ceil(100 / 40) rounds


def test_nested_maps_overlap_their_waits() -> None:
    inner = {
        "Type": "Map",
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}},
    }
    r = execute(_map(0, inner), [[1, 2, 3]] * 3, clock=VirtualClock(T0))
    assert r.status == "SUCCEEDED"
    assert r.stop - r.start == timedelta(seconds=60)


def test_assigning_more_than_256_kib_is_data_limit_exceeded() -> None:
    r = execute(one({"Type": "Pass", "Assign": {"big.$": "$.text"}}), {"text": "x" * 200_000, "more": 1})
    assert r.status == "SUCCEEDED"
    r = execute(one({"Type": "Pass", "Assign": {"a.$": "$.text", "b.$": "$.text"}}), {"text": "x" * 200_000})
    assert r.status == "FAILED" and r.error == "States.DataLimitExceeded"


def test_an_integration_bug_fails_the_task_visibly_even_inside_a_map() -> None:
    def broken(_p: Any) -> Any:
        raise RuntimeError("runner bug")

    r = execute(one(task("f")), {}, Functions(f=broken))
    assert (r.status, r.error) == ("FAILED", "States.TaskFailed")
    assert "RuntimeError: runner bug" in (r.cause or "")
    r = execute(_map(0, task("f")), [1, 2, 3], Functions(f=broken))
    assert (r.status, r.error) == ("FAILED", "States.TaskFailed")


@settings(max_examples=40, deadline=None)
@given(
    interval=st.integers(1, 30),
    rate=st.floats(1.0, 4.0),
    attempts=st.integers(1, 5),
    max_delay=st.one_of(st.none(), st.integers(1, 120)),
    jitter=st.sampled_from(["FULL", "NONE"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_retry_delays_respect_interval_backoff_cap_and_jitter(
    interval: int, rate: float, attempts: int, max_delay: int | None, jitter: str, seed: int
) -> None:
    retrier: dict[str, Any] = {
        "ErrorEquals": ["E"],
        "IntervalSeconds": interval,
        "BackoffRate": rate,
        "MaxAttempts": attempts,
        "JitterStrategy": jitter,
    }
    if max_delay is not None:
        retrier["MaxDelaySeconds"] = max_delay
    r = execute(
        one(task("f", Retry=[retrier])), {}, Functions(f=raiser("E")), clock=VirtualClock(T0), rng=random.Random(seed)
    )
    scheduled = [e["timestamp"] for e in events(r, "LambdaFunctionScheduled")]
    delays = [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)]
    assert len(delays) == attempts
    for k, delay in enumerate(delays):
        bound = interval * rate**k
        if max_delay is not None:
            bound = min(bound, max_delay)
        if jitter == "NONE":
            assert delay == pytest.approx(bound, abs=1e-5)
        else:
            assert -1e-6 <= delay <= bound + 1e-5


def test_result_path_into_a_scalar_is_result_path_match_failure() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": task(
                "f", ResultPath="$.r", Catch=[{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "C"}], End=True
            ),
            "C": {"Type": "Pass", "Result": "caught", "End": True},
        },
    }
    assert execute(definition, "a string", Functions(f=lambda p: 1)).output == "caught"
    # a Catch whose own ResultPath cannot apply lets that error out
    failing_catch = {
        "StartAt": "T",
        "States": {
            "T": task("f", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "C"}], End=True),
            "C": {"Type": "Pass", "End": True},
        },
    }
    r = execute(failing_catch, "scalar item", Functions(f=raiser("Boom")))
    assert (r.status, r.error) == ("FAILED", "States.ResultPathMatchFailure")


def test_jsonata_now_and_millis_follow_the_virtual_clock() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 3600, "Next": "P"},
            "P": {"Type": "Pass", "Output": {"now": "{% $now() %}", "ms": "{% $millis() %}"}, "End": True},
        },
    }
    r = execute(definition, {}, clock=VirtualClock(T0))
    assert r.output == {"now": "2024-01-01T01:00:00.000Z", "ms": int((T0 + timedelta(hours=1)).timestamp() * 1000)}


def test_a_failing_listener_does_not_break_the_execution() -> None:
    def listener(_event: dict[str, Any]) -> None:
        raise BrokenPipeError("progress display went away")

    r = execute(one({"Type": "Pass"}), {"a": 1}, listener=listener)
    assert r.status == "SUCCEEDED" and r.output == {"a": 1}
