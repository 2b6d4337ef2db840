"""Activity workers end to end against ``sfn-workers serve``: 200 tasks, 3 workers, one worker killed mid-task.

A Map runs 200 activity tasks (HeartbeatSeconds 2, Retry on States.HeartbeatTimeout). A worker
*process* (``sfn-workers worker``) takes a task and is killed with SIGKILL while running it; the
task's heartbeat times out, the state retries it, and one of the 3 in-process workers
(``run_activity_worker``) completes it. Nothing is lost (every item's result is in the output) and
nothing is answered twice (each item ran once in the surviving workers; the history has one
success per item).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sfn_workers import TaskContext, task
from sfn_workers.activity import WorkerStats, run_activity_worker
from sfn_workers.local.activities import activities_for

ROLE = "arn:aws:iam::123456789012:role/local"
TASKS = 200
ROOT = Path(__file__).resolve().parents[2]


class Item(BaseModel):
    n: int


class Squared(BaseModel):
    n: int
    square: int


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from sfn_workers.local.api.server import start_server

    srv = start_server(None, port=0)
    activities_for(srv.environment.tokens).poll_seconds = 1.0
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", srv.url)  # where the workers poll and answer
    try:
        yield srv
    finally:
        srv.close(grace=5)


def sfn_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("stepfunctions", endpoint_url=url, config=Config(retries={"max_attempts": 1}, read_timeout=10))


def definition(activity_arn: str) -> str:
    work = {
        "Type": "Task",
        "Resource": activity_arn,
        "HeartbeatSeconds": 2,
        "TimeoutSeconds": 120,
        "Retry": [
            {"ErrorEquals": ["States.HeartbeatTimeout", "WorkerStopped"], "IntervalSeconds": 1, "MaxAttempts": 3}
        ],
        "End": True,
    }
    fan_out = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "MaxConcurrency": 50,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Work", "States": {"Work": work}},
        "End": True,
    }
    return json.dumps({"StartAt": "FanOut", "States": {"FanOut": fan_out}})


VICTIM = textwrap.dedent(
    """
    import pathlib, time
    from sfn_workers import task

    @task(offload=False)
    def handler(item: dict) -> dict:
        pathlib.Path("taken.json").write_text(str(item["n"]))
        time.sleep(600)  # killed here, mid-task
        return item
    """
)


def test_a_worker_killed_mid_task_is_retried_on_another_and_nothing_is_lost_or_answered_twice(
    server: Any, tmp_path: Path
) -> None:
    sfn = sfn_client(server.url)
    activity = sfn.create_activity(name=f"squares-{uuid.uuid4().hex[:6]}")["activityArn"]
    machine = sfn.create_state_machine(name=f"sm-{uuid.uuid4().hex[:8]}", definition=definition(activity), roleArn=ROLE)
    items = [{"n": n} for n in range(TASKS)]
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps({"items": items}))

    # GIVEN a worker process that takes one task and is killed while running it
    (tmp_path / "victim.py").write_text(VICTIM)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL_SFN": server.url}
    victim = subprocess.Popen(
        [sys.executable, "-m", "sfn_workers.local.cli", "worker", "--activity", activity, "victim:handler"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        give_up = time.monotonic() + 60
        while not (tmp_path / "taken.json").exists():
            assert victim.poll() is None and time.monotonic() < give_up, "the victim worker never took a task"
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    killed_item = int((tmp_path / "taken.json").read_text())

    # WHEN 3 workers in this process serve the activity
    ran: Counter[int] = Counter()
    lock = threading.Lock()

    @task(offload=False)
    def square(item: Item, ctx: TaskContext) -> Squared:
        with lock:
            ran[item.n] += 1
        return Squared(n=item.n, square=item.n * item.n)

    stop = threading.Event()
    stats: list[WorkerStats] = []
    workers = threading.Thread(
        target=lambda: stats.append(run_activity_worker(activity, square, workers=3, stop=stop, progress_every=50))
    )
    workers.start()
    try:
        give_up = time.monotonic() + 120
        while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < give_up, "the execution did not finish"
            time.sleep(0.1)
    finally:
        stop.set()
        workers.join(30)

    # THEN every item came back once, the killed one included
    assert status["status"] == "SUCCEEDED", status.get("cause")
    output = json.loads(status["output"])
    assert output == [{"n": n, "square": n * n} for n in range(TASKS)]
    assert ran == Counter(range(TASKS))  # each item ran to the end exactly once, on a surviving worker
    events = [
        e["type"]
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
        for e in page["events"]
    ]
    assert events.count("TaskSucceeded") == TASKS
    assert events.count("TaskTimedOut") == 1  # the killed worker's task: its heartbeat stopped
    assert killed_item in ran
    [worker_stats] = stats
    assert worker_stats.done == TASKS and worker_stats.undeliverable == 0 and worker_stats.stopped == 0


def test_a_stopped_worker_fails_its_unfinished_task_with_worker_stopped(server: Any) -> None:
    sfn = sfn_client(server.url)
    activity = sfn.create_activity(name=f"slow-{uuid.uuid4().hex[:6]}")["activityArn"]
    work = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 60, "End": True}
    machine = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Work", "States": {"Work": work}}),
        roleArn=ROLE,
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"n": 1}')
    running, release = threading.Event(), threading.Event()

    @task(offload=False)
    def slow(item: Item) -> Squared:
        running.set()
        release.wait(30)  # longer than the grace period
        return Squared(n=item.n, square=1)

    stop = threading.Event()
    stats: list[WorkerStats] = []
    worker = threading.Thread(target=lambda: stats.append(run_activity_worker(activity, slow, stop=stop, grace=0.3)))
    worker.start()
    assert running.wait(30)
    stop.set()  # what SIGTERM does
    worker.join(30)
    release.set()

    give_up = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < give_up
        time.sleep(0.05)
    assert (status["status"], status.get("error")) == ("FAILED", "WorkerStopped")
    assert stats[0].stopped == 1


def test_sigterm_stops_a_worker_process_and_its_task_is_failed_not_dropped(server: Any, tmp_path: Path) -> None:
    sfn = sfn_client(server.url)
    activity = sfn.create_activity(name=f"term-{uuid.uuid4().hex[:6]}")["activityArn"]
    work = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 60, "End": True}
    machine = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Work", "States": {"Work": work}}),
        roleArn=ROLE,
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"n": 1}')
    (tmp_path / "victim.py").write_text(VICTIM)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL_SFN": server.url}
    argv = [sys.executable, "-m", "sfn_workers.local.cli", "worker", "--activity", activity, "victim:handler"]
    process = subprocess.Popen([*argv, "--grace", "0.5"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    give_up = time.monotonic() + 60
    while not (tmp_path / "taken.json").exists():
        assert process.poll() is None and time.monotonic() < give_up, "the worker never took the task"
        time.sleep(0.05)

    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert "1 stopped" in err
    give_up = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < give_up
        time.sleep(0.05)
    assert (status["status"], status.get("error")) == ("FAILED", "WorkerStopped")


def test_polls_that_fail_are_retried_and_the_worker_keeps_going(server: Any) -> None:
    import boto3
    from botocore.config import Config

    from tests.conftest import free_port

    unreachable = boto3.client(
        "stepfunctions",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )

    @task(offload=False)
    def never(item: Item) -> Squared:
        raise AssertionError("no task can arrive")

    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()
    activity = "arn:aws:states:us-east-1:123456789012:activity:nowhere"
    stats = run_activity_worker(activity, never, stop=stop, client=unreachable)

    assert stats.poll_errors >= 1  # the retries of one poll ran out, and the worker went on
    assert stats.taken == 0


def test_a_long_task_is_kept_alive_by_heartbeats_and_its_large_output_is_offloaded(
    server: Any, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="activity-payloads")
    monkeypatch.setenv("SFN_WORKERS_BUCKET", "activity-payloads")
    sfn = sfn_client(server.url)
    activity = sfn.create_activity(name=f"long-{uuid.uuid4().hex[:6]}")["activityArn"]
    work = {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 1, "TimeoutSeconds": 60, "End": True}
    machine = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Work", "States": {"Work": work}}),
        roleArn=ROLE,
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"n": 3}')

    @task(heartbeat_seconds=0.3)
    def long_one(item: Item) -> dict[str, Any]:
        time.sleep(2.5)  # longer than HeartbeatSeconds: only the heartbeats keep the task open
        return {"n": item.n, "report": "r" * 100_000}  # over the 64 KiB offloading threshold

    stop = threading.Event()
    worker = threading.Thread(target=lambda: run_activity_worker(activity, long_one, stop=stop))
    worker.start()
    try:
        give_up = time.monotonic() + 60
        while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < give_up
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)

    assert status["status"] == "SUCCEEDED", status.get("cause")
    output = json.loads(status["output"])
    assert output["n"] == 3
    assert "sfn_workers_s3" in json.dumps(output["report"])  # a pointer the next @task resolves


def test_the_worker_command_refuses_what_is_not_a_task_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from sfn_workers.local.cli import main

    (tmp_path / "plain.py").write_text("def handler(event, context):\n    return event\n")
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    activity = "arn:aws:states:us-east-1:123456789012:activity:a"
    for spec, message in [
        ("plain:handler", "not a @task"),
        ("missing:handler", "cannot import"),
        ("plain", "module:handler"),
    ]:
        assert main(["worker", "--activity", activity, spec], out=io.StringIO(), err=err) == 2
        assert message in err.getvalue()
