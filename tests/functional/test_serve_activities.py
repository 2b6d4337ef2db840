"""``sfn-workers serve``'s activity API, driven by boto3 over real HTTP: activities, long polling,
and activity Task states that wait for a worker's answer under HeartbeatSeconds/TimeoutSeconds."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sfn_workers.local.activities import activities_for
from tests.serve_support import served, sfn_client, until_closed

ROLE = "arn:aws:iam::123456789012:role/local"
POLL_SECONDS = 1.0  # GetActivityTask's long poll, shortened for tests (60 s as on AWS by default)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with served() as srv:
        activities_for(srv.environment.tokens).poll_seconds = POLL_SECONDS
        yield srv


@pytest.fixture(scope="module")
def sfn(server: Any) -> Any:
    return sfn_client(server.url, retries={"max_attempts": 1}, read_timeout=POLL_SECONDS + 5)


def machine(sfn: Any, activity_arn: str, **limits: int) -> str:
    task = {"Type": "Task", "Resource": activity_arn, "End": True, **limits}
    definition = json.dumps({"StartAt": "Work", "States": {"Work": task}})
    name = f"sm-{uuid.uuid4().hex[:10]}"
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"])


def test_create_describe_list_and_delete_activities(sfn: Any) -> None:
    name = f"act-{uuid.uuid4().hex[:8]}"
    created = sfn.create_activity(name=name)
    assert created["activityArn"].endswith(f":activity:{name}")
    assert sfn.create_activity(name=name)["activityArn"] == created["activityArn"]  # idempotent, as on AWS

    described = sfn.describe_activity(activityArn=created["activityArn"])
    assert described["name"] == name
    assert name in [a["name"] for a in sfn.list_activities()["activities"]]

    sfn.delete_activity(activityArn=created["activityArn"])
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.describe_activity(activityArn=created["activityArn"])
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_activity(activityArn="arn:aws:states:us-east-1:123456789012:stateMachine:x")


def test_an_activity_task_is_taken_by_a_worker_and_its_answer_is_the_states_result(sfn: Any) -> None:
    activity = sfn.create_activity(name=f"act-{uuid.uuid4().hex[:8]}")["activityArn"]
    started = sfn.start_execution(stateMachineArn=machine(sfn, activity, TimeoutSeconds=30), input='{"n": 2}')

    task = sfn.get_activity_task(activityArn=activity, workerName="w-1")
    assert json.loads(task["input"]) == {"n": 2}
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='{"square": 4}')

    closed = until_closed(sfn, started["executionArn"])
    assert closed["status"] == "SUCCEEDED"
    assert json.loads(closed["output"]) == {"square": 4}


def test_get_activity_task_long_polls_and_answers_no_task_when_there_is_none(sfn: Any) -> None:
    activity = sfn.create_activity(name=f"act-{uuid.uuid4().hex[:8]}")["activityArn"]
    answer = sfn.get_activity_task(activityArn=activity)
    assert not answer.get("taskToken")


def test_a_waiting_poll_gets_a_task_scheduled_after_it_began(sfn: Any) -> None:
    activity = sfn.create_activity(name=f"act-{uuid.uuid4().hex[:8]}")["activityArn"]
    got: list[dict[str, Any]] = []
    poller = threading.Thread(target=lambda: got.append(sfn.get_activity_task(activityArn=activity)))
    poller.start()
    time.sleep(0.2)
    started = sfn.start_execution(stateMachineArn=machine(sfn, activity, TimeoutSeconds=30), input="{}")
    poller.join(10)

    assert got and got[0].get("taskToken")
    sfn.send_task_failure(taskToken=got[0]["taskToken"], error="Boom", cause="worker said no")
    closed = until_closed(sfn, started["executionArn"])
    assert (closed["status"], closed.get("error")) == ("FAILED", "Boom")


def test_a_task_nobody_heartbeats_times_out_and_is_not_handed_out_afterwards(sfn: Any) -> None:
    activity = sfn.create_activity(name=f"act-{uuid.uuid4().hex[:8]}")["activityArn"]
    arn = machine(sfn, activity, TimeoutSeconds=30, HeartbeatSeconds=1)
    started = sfn.start_execution(stateMachineArn=arn, input="{}")

    task = sfn.get_activity_task(activityArn=activity)  # taken, then the worker goes silent
    closed = until_closed(sfn, started["executionArn"])
    assert (closed["status"], closed.get("error")) == ("FAILED", "States.HeartbeatTimeout")
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")


def test_an_activity_that_does_not_exist_fails_the_state(sfn: Any) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:activity:never-created"
    started = sfn.start_execution(stateMachineArn=machine(sfn, missing, TimeoutSeconds=30), input="{}")
    closed = until_closed(sfn, started["executionArn"])
    assert closed["status"] == "FAILED"
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.get_activity_task(activityArn=missing)
