"""The local Step Functions service keeps what a long-running server must, and no more.

Retention rule: running executions are always kept; of the closed ones, the newest
``keep_executions`` are kept, with their histories compressed within ``history_budget_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from sfn_workers.local.tokens import ApiError

PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/r"


class NoIntegrations:
    def invoke_lambda(self, call: Any) -> Any:
        raise AssertionError("no Lambda in these machines")

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        raise AssertionError("no service in these machines")


def _service(**options: Any) -> Any:
    from sfn_workers.local import asl
    from sfn_workers.local.service import LocalStepFunctions

    return LocalStepFunctions(lambda clock: NoIntegrations(), asl.TokenBroker(), clock=asl.VirtualClock, **options)


def _run_to_end(service: Any, machine: str, name: str, value: Any = None) -> str:
    arn = service.start_execution({"stateMachineArn": machine, "name": name, "input": json.dumps(value or {})})[
        "executionArn"
    ]
    run = service._runs[arn]
    assert run.done.wait(10)
    return str(arn)


def test_only_the_newest_closed_executions_are_kept() -> None:
    # GIVEN a service that keeps 3 closed executions
    service = _service(keep_executions=3)
    machine = service.create_state_machine({"name": "m", "definition": PASS, "roleArn": ROLE})["stateMachineArn"]

    # WHEN 5 executions run to the end
    arns = [_run_to_end(service, machine, f"e{i}") for i in range(5)]

    # THEN the 3 newest are listed and described, the 2 oldest are forgotten
    listed = [e["executionArn"] for e in service.list_executions({"stateMachineArn": machine})["executions"]]
    assert listed == list(reversed(arns[2:]))
    for arn in arns[:2]:
        with pytest.raises(ApiError) as caught:
            service.describe_execution({"executionArn": arn})
        assert caught.value.code == "ExecutionDoesNotExist"
    assert service.get_execution_history({"executionArn": arns[4]})["events"][-1]["type"] == "ExecutionSucceeded"
    # AND a forgotten execution's name can be used again
    assert _run_to_end(service, machine, "e0") == arns[0]
    assert service.stats()["closed"] == 3
    service.close()


def test_history_bytes_are_bounded() -> None:
    # GIVEN a tiny history budget
    service = _service(history_budget_bytes=2_000)
    machine = service.create_state_machine({"name": "m", "definition": PASS, "roleArn": ROLE})["stateMachineArn"]

    # WHEN executions with incompressible inputs close
    import secrets

    for i in range(10):
        _run_to_end(service, machine, f"e{i}", {"noise": secrets.token_hex(300)})

    # THEN the stored histories stay within the budget, newest kept
    stats = service.stats()
    assert stats["history_bytes"] <= 2_000
    assert 1 <= stats["closed"] < 10
    newest = service.list_executions({"stateMachineArn": machine})["executions"][0]
    assert newest["name"] == "e9"
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
