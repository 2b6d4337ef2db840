"""State machine actions: CreateStateMachine, DescribeStateMachine, ListStateMachines, DeleteStateMachine,
DescribeStateMachineForExecution."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sfn_workers._limits import ARN_MAX_CHARS
from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.models import MachineRecord, epoch, now
from sfn_workers.local.api.protocol import ApiError, ApiRequest, Page, arn_parts, check_name

__all__ = ["ACTIONS", "DEFINITION_MAX_CHARS", "MAX_RESULTS", "NAME_MAX_CHARS", "add_state_machine"]

DEFINITION_MAX_CHARS = 1_048_576
NAME_MAX_CHARS = 80
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")


def _record(backend: Backend, name: str, text: str, kind: str, role: str, **options: Any) -> MachineRecord:
    return MachineRecord(
        arn=backend.machine_arn(name),
        name=name,
        type=kind,
        definition_text=text,
        definition=backend.parse(text, express=kind == "EXPRESS"),
        role_arn=role,
        created=now(),
        logging={"level": "OFF", "includeExecutionData": False, **(options.get("logging") or {})},
        tracing={"enabled": False, **(options.get("tracing") or {})},
    )


def add_state_machine(
    backend: Backend,
    name: str,
    definition: str | Mapping[str, Any],
    *,
    type: str = "STANDARD",
    role_arn: str | None = None,
) -> str:
    """Create (or replace) a state machine directly, e.g. one of the template's; returns its ARN."""
    text = definition if isinstance(definition, str) else json.dumps(definition, indent=2)
    role = role_arn or f"arn:aws:iam::{backend.account}:role/{name}-role"
    record = _record(backend, name, text, type, role)
    with backend.lock:
        backend.machines[record.arn] = record
    return record.arn


def create_state_machine(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    name = r.required_text("name", high=NAME_MAX_CHARS)
    text = r.required_text("definition", high=DEFINITION_MAX_CHARS)
    role = r.required_text("roleArn", high=ARN_MAX_CHARS)
    kind = r.choice("type", ("STANDARD", "EXPRESS")) or "STANDARD"
    logging_config = r.mapping("loggingConfiguration")
    tracing = r.mapping("tracingConfiguration")
    r.text("versionDescription", high=256)
    r.check()
    check_name(name)
    if not _ROLE_ARN.match(role):
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {role}'")
    record = _record(backend, name, text, kind, role, logging=logging_config, tracing=tracing)
    with backend.lock:
        existing = backend.machines.get(record.arn)
        if existing is not None:
            if (existing.definition_text, existing.role_arn, existing.type) == (text, role, kind):
                return {"stateMachineArn": existing.arn, "creationDate": epoch(existing.created)}
            raise ApiError("StateMachineAlreadyExists", f"State Machine Already Exists: '{record.arn}'")
        backend.machines[record.arn] = record
    return {"stateMachineArn": record.arn, "creationDate": epoch(record.created)}


def describe(machine: MachineRecord) -> dict[str, Any]:
    """DescribeStateMachine's answer for a record."""
    return {
        "stateMachineArn": machine.arn,
        "name": machine.name,
        "status": "ACTIVE",
        "definition": machine.definition_text,
        "roleArn": machine.role_arn,
        "type": machine.type,
        "creationDate": epoch(machine.created),
        "loggingConfiguration": machine.logging,
        "tracingConfiguration": machine.tracing,
        "description": machine.description,
    }


def _machine_arn(request: dict[str, Any]) -> str:
    r = ApiRequest(request)
    machine_arn = r.required_text("stateMachineArn", high=ARN_MAX_CHARS)
    r.check()
    return machine_arn


def describe_state_machine(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    return describe(backend.machine(_machine_arn(request)))


def delete_state_machine(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    machine_arn = _machine_arn(request)
    arn_parts(machine_arn, ("stateMachine",))
    with backend.lock:
        machine = backend.machines.pop(machine_arn, None)
    if machine is not None:  # AWS stops the running executions of a deleted state machine
        for run in list(machine.runs.values()):
            backend.abort(run, "States.Aborted", "the state machine was deleted")
    return {}


def list_state_machines(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
    token = r.text("nextToken", low=1, high=1024)
    r.check()
    start = Page.position("stateMachines", token) or 0
    with backend.lock:
        machines = list(backend.machines.values())
    page = machines[start : start + limit]
    answer: dict[str, Any] = {
        "stateMachines": [
            {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": epoch(m.created)} for m in page
        ]
    }
    if start + limit < len(machines):
        answer["nextToken"] = Page.token("stateMachines", start + limit)
    return answer


def describe_state_machine_for_execution(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    execution_arn = r.required_text("executionArn", high=ARN_MAX_CHARS)
    r.check()
    machine = backend.run(execution_arn).machine
    answer = describe(machine)
    for key in ("status", "type", "creationDate", "description"):
        answer.pop(key, None)
    answer["updateDate"] = epoch(machine.created)
    return answer


ACTIONS: dict[str, Action] = {
    "CreateStateMachine": create_state_machine,
    "DescribeStateMachine": describe_state_machine,
    "ListStateMachines": list_state_machines,
    "DeleteStateMachine": delete_state_machine,
    "DescribeStateMachineForExecution": describe_state_machine_for_execution,
}
