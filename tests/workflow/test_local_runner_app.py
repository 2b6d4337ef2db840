"""The local runner on a test-only app (fixtures/app): Map concurrency, full-jitter retries, task
tokens answered from outside, and the SQS event source mapping feeding a worker in batches."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import LocalRunner, run_execution

APP = Path(__file__).parent / "fixtures" / "app" / "template.yaml"


def events_of(result: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in result.history if e["type"] == kind]


def test_map_never_runs_more_than_max_concurrency_at_once() -> None:
    # GIVEN a Map with MaxConcurrency 3 whose handler counts the calls running when it starts
    items = list(range(24))

    # WHEN it runs over 24 items
    result = run_execution(APP, {"items": items}, state_machine="FanOutMachine")

    # THEN it succeeds, every item was handled in order, the template's Globals reached the handler,
    # and at no time were more than 3 calls running -- yet the Map did run them concurrently
    assert result.status == "SUCCEEDED", result.cause
    assert [row["item"] for row in result.output] == items
    assert {row["stage"] for row in result.output} == {"test"}
    peak = max(row["concurrent"] for row in result.output)
    assert peak <= 3
    assert peak >= 2, "the iterations never overlapped: the Map ran one at a time"


def retry_delays(result: Any) -> list[float]:
    """Seconds between each failed attempt and the next attempt, on the execution's clock."""
    delays = []
    history = result.history
    for index, event in enumerate(history):
        if event["type"] == "LambdaFunctionFailed":
            following = next(e for e in history[index + 1 :] if e["type"] == "LambdaFunctionScheduled")
            delays.append((following["timestamp"] - event["timestamp"]).total_seconds())
    return delays


def test_full_jitter_retry_delays_stay_within_their_bounds_on_the_virtual_clock() -> None:
    # GIVEN Retry: IntervalSeconds 2, BackoffRate 3, MaxAttempts 4, MaxDelaySeconds 10, JitterStrategy FULL
    bounds = [2.0, 6.0, 10.0]  # min(MaxDelaySeconds, 2 * 3**n) for retries n = 0, 1, 2
    delays: list[list[float]] = []
    began = time.perf_counter()
    with LocalRunner(APP, state_machine="RetryMachine") as runner:
        for run in range(8):
            # WHEN the task fails three times before it succeeds
            result = runner.run({"key": f"k{run}", "failTimes": 3})
            assert result.status == "SUCCEEDED", result.cause
            assert result.output == {"key": f"k{run}", "attempts": 4}
            delays.append(retry_delays(result))
    took = time.perf_counter() - began

    # THEN every delay is between 0 and its bound, the delays are random (not all at the bound),
    # and the waits took virtual time only
    for run_delays in delays:
        assert len(run_delays) == 3
        for delay, bound in zip(run_delays, bounds, strict=True):
            assert 0.0 <= delay <= bound + 1e-6
    flat = [d for run_delays in delays for d in run_delays]
    assert len(set(flat)) > len(flat) // 2, f"delays look fixed, not jittered: {flat}"
    assert sum(flat) > 0
    assert took < sum(flat), "the retries slept in real time"


def test_retries_run_out_and_the_error_is_the_handlers() -> None:
    result = run_execution(APP, {"key": "always", "failTimes": 99}, state_machine="RetryMachine")

    assert result.status == "FAILED"
    assert result.error == "Throttled"
    assert result.cause is not None
    cause = json.loads(result.cause)
    assert cause["errorType"] == "Throttled"
    assert cause["errorMessage"] == "attempt 5 throttled"
    assert any("app_handlers.py" in line for line in cause["stackTrace"])
    assert len(events_of(result, "LambdaFunctionScheduled")) == 5  # 1 attempt + MaxAttempts 4


def test_a_task_token_is_answered_from_outside_through_the_sendtask_endpoint() -> None:
    # GIVEN a waitForTaskToken step that asks a person to approve, running on the real clock
    tokens: list[str] = []
    scheduled = threading.Event()

    def listener(event: dict[str, Any]) -> None:
        if event["type"] == "TaskScheduled":
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            tokens.append(parameters["Payload"]["token"])
            scheduled.set()

    with LocalRunner(APP, state_machine="ApprovalMachine", real_time=True) as runner:
        running = runner.start({"orderId": "o-7"}, listener=listener)
        assert scheduled.wait(10)
        import boto3

        # WHEN the approver answers with the AWS SDK (AWS_ENDPOINT_URL_SFN points at the runner)
        sfn = boto3.client("stepfunctions")
        sfn.send_task_success(taskToken=tokens[0], output=json.dumps({"approved": True, "by": "ann"}))
        result = running.result(timeout=10)

        # THEN the execution continues with the approver's answer, and the token is closed
        assert result.status == "SUCCEEDED", result.cause
        assert result.output == {"orderId": "o-7", "approval": {"approved": True, "by": "ann"}}
        with pytest.raises(sfn.exceptions.TaskDoesNotExist):
            sfn.send_task_success(taskToken=tokens[0], output="{}")
        with pytest.raises(sfn.exceptions.InvalidToken):
            sfn.send_task_success(taskToken="not-a-token", output="{}")


def test_a_task_token_that_nobody_answers_times_out_in_virtual_time() -> None:
    began = time.perf_counter()
    result = run_execution(APP, {"orderId": "o-8"}, state_machine="ApprovalMachine")

    assert result.status == "FAILED"
    assert result.error == "States.Timeout"
    assert result.stop - result.start >= timedelta(seconds=60)
    assert time.perf_counter() - began < 30


def test_sqs_event_source_mapping_feeds_the_worker_in_batches_and_redelivers_reported_failures() -> None:
    # GIVEN 7 jobs sent to SQS with waitForTaskToken; the worker's mapping has BatchSize 5 and
    # ReportBatchItemFailures; job 3 is reported as a failure the first time it arrives
    jobs = [{"id": n, "failOnce": n == 3} for n in range(7)]

    # WHEN the execution runs
    result = run_execution(APP, {"jobs": jobs}, state_machine="QueueMachine")

    # THEN every job was reported by the worker through its token, in batches of at most 5,
    # and the failed job came back (a second receive) and succeeded
    assert result.status == "SUCCEEDED", result.cause
    assert [row["job"] for row in result.output] == list(range(7))
    assert all(1 <= row["batch"] <= 5 for row in result.output)
    assert result.output[3]["receiveCount"] == 2
    assert all(row["receiveCount"] == 1 for n, row in enumerate(result.output) if n != 3)
    assert len(events_of(result, "TaskSubmitted")) == 7
