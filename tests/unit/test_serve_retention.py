"""The local Step Functions service keeps what a long-running server must, and no more.

Retention rule: every execution is kept (description, status, input, output) while the server runs;
the histories of the newest ``keep_executions`` closed ones are kept, compressed within
``history_budget_bytes``; older histories are summarised (start and end events).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from sfn_workers.local.token_backend import ApiError

PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/r"


class NoIntegrations:
    def invoke_lambda(self, call: Any) -> Any:
        raise AssertionError("no Lambda in these machines")

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        raise AssertionError("no service in these machines")


def _service(**options: Any) -> Any:
    from sfn_workers.local import asl
    from sfn_workers.local.api.stepfunctions import LocalStepFunctions

    return LocalStepFunctions(lambda clock: NoIntegrations(), asl.TokenBroker(), clock=asl.VirtualClock, **options)


def _run_to_end(service: Any, machine: str, name: str, value: Any = None) -> str:
    arn = service.start_execution({"stateMachineArn": machine, "name": name, "input": json.dumps(value or {})})[
        "executionArn"
    ]
    assert service.wait(arn, 10)
    return str(arn)


def test_every_closed_execution_is_kept_and_only_the_newest_keep_their_history() -> None:
    # GIVEN a service that keeps the histories of 3 closed executions
    service = _service(keep_executions=3)
    machine = service.create_state_machine({"name": "m", "definition": PASS, "roleArn": ROLE})["stateMachineArn"]

    # WHEN 5 executions run to the end
    arns = [_run_to_end(service, machine, f"e{i}", {"i": i}) for i in range(5)]

    # THEN all 5 are listed and described, with their input and output
    listed = [e["executionArn"] for e in service.list_executions({"stateMachineArn": machine})["executions"]]
    assert listed == list(reversed(arns))
    for i, arn in enumerate(arns):
        described = service.describe_execution({"executionArn": arn})
        assert (described["status"], json.loads(described["output"])) == ("SUCCEEDED", {"i": i})
    # AND the 3 newest have their full history, the 2 oldest a summary that DescribeExecution announces
    assert [e["type"] for e in service.get_execution_history({"executionArn": arns[4]})["events"]] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    for arn in arns[:2]:
        events = service.get_execution_history({"executionArn": arn})["events"]
        assert [e["type"] for e in events] == ["ExecutionStarted", "ExecutionSucceeded"]
        assert "dropped" in service.describe_execution({"executionArn": arn})["redriveStatusReason"]
    assert "redriveStatusReason" not in service.describe_execution({"executionArn": arns[4]})
    # AND a kept execution's name cannot be used again with another input (as on AWS)
    with pytest.raises(ApiError) as caught:
        service.start_execution({"stateMachineArn": machine, "name": "e0", "input": '{"other": 1}'})
    assert caught.value.code == "ExecutionAlreadyExists"
    assert (service.stats()["closed"], service.stats()["histories"]) == (5, 3)
    service.close()


def test_an_execution_whose_history_passes_the_budget_is_still_described_after_it_ends() -> None:
    # GIVEN a tiny history budget
    service = _service(history_budget_bytes=2_000)
    machine = service.create_state_machine({"name": "m", "definition": PASS, "roleArn": ROLE})["stateMachineArn"]

    # WHEN executions whose compressed histories each pass the budget close
    import secrets

    arns = [_run_to_end(service, machine, f"e{i}", {"noise": secrets.token_hex(1_500)}) for i in range(10)]

    # THEN the stored histories stay within the budget
    stats = service.stats()
    assert stats["history_bytes"] <= 2_000
    # AND every execution is still described with its status and output, and its history summarised
    for arn in arns:
        described = service.describe_execution({"executionArn": arn})
        assert described["status"] == "SUCCEEDED"
        assert len(json.loads(described["output"])["noise"]) == 3_000
        events = service.get_execution_history({"executionArn": arn})["events"]
        assert events[-1]["type"] == "ExecutionSucceeded"
        assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == json.loads(described["output"])
    service.close()


def test_a_closed_history_reads_back_exactly() -> None:
    service = _service()
    machine = service.create_state_machine({"name": "m", "definition": PASS, "roleArn": ROLE})["stateMachineArn"]
    arn = _run_to_end(service, machine, "x", {"é": [1, 2.5, None, True]})
    events = service.get_execution_history({"executionArn": arn})["events"]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"é": [1, 2.5, None, True]}
    assert all(isinstance(e["timestamp"], float) for e in events)
    service.close()


def test_with_virtual_time_a_long_wait_takes_no_real_time() -> None:
    import time

    service = _service()
    wait = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 86_400, "End": True}}})
    machine = service.create_state_machine({"name": "w", "definition": wait, "roleArn": ROLE})["stateMachineArn"]
    started = time.monotonic()
    arn = _run_to_end(service, machine, "day")
    assert time.monotonic() - started < 5
    described = service.describe_execution({"executionArn": arn})
    assert described["status"] == "SUCCEEDED"
    events = service.get_execution_history({"executionArn": arn})["events"]
    assert events[-1]["timestamp"] - events[0]["timestamp"] >= 86_400  # the history follows the virtual clock
    service.close()
