"""UpdateStateMachine, versions (PublishStateMachineVersion, ListStateMachineVersions,
DeleteStateMachineVersion) and aliases (Create/Describe/List/Update/DeleteStateMachineAlias), as AWS
serves them.

A version is an immutable copy of a state machine's definition and role at one revision
(``<machine ARN>:<n>``); an alias (``<machine ARN>:<alias>``) routes each StartExecution to one of
one or two versions by weight. Executions of a version or an alias are the state machine's
(its ListExecutions shows them), and run the version's definition.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sfn_workers._limits import ARN_MAX_CHARS
from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.machines import DEFINITION_MAX_CHARS
from sfn_workers.local.api.models import MachineRecord, epoch, now
from sfn_workers.local.api.protocol import ApiError, ApiRequest, arn_parts, check_name

__all__ = ["ACTIONS", "Versions"]

_ALIAS_NAME = re.compile(r"^(?=.*[a-zA-Z_\-.])[a-zA-Z0-9_\-.]{1,80}$")


@dataclass
class _Version:
    arn: str
    record: MachineRecord  # the definition and role it froze (arn: the state machine's)
    revision: str
    created: datetime
    description: str


@dataclass
class _Alias:
    arn: str
    name: str
    machine_arn: str
    routing: list[dict[str, Any]]
    description: str
    created: datetime
    updated: datetime = field(default_factory=now)


class Versions:
    """Revisions, versions and aliases of the backend's state machines (one per backend)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.revisions: dict[str, str] = {}  # machine ARN -> revision id
        self.versions: dict[str, list[_Version]] = {}  # machine ARN -> versions, oldest first
        self.aliases: dict[str, _Alias] = {}
        self.counters: dict[str, int] = {}
        backend.qualified = self.resolve

    def revision(self, machine_arn: str) -> str:
        with self.lock:
            return self.revisions.setdefault(machine_arn, str(uuid.uuid4()))

    def version(self, arn: str) -> _Version:
        machine_arn, _, number = arn.rpartition(":")
        with self.lock:
            found = next((v for v in self.versions.get(machine_arn, []) if v.arn == arn), None)
        if found is None or not number.isdigit():
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        return found

    def alias(self, arn: str) -> _Alias:
        with self.lock:
            found = self.aliases.get(arn)
        if found is None:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        return found

    def resolve(self, arn: str) -> MachineRecord | None:
        """The record an execution of a version or alias ARN runs (an alias picks by weight)."""
        if arn.rpartition(":")[2].isdigit():
            with self.lock:
                versions = [v for vs in self.versions.values() for v in vs if v.arn == arn]
            return versions[0].record if versions else None
        with self.lock:
            alias = self.aliases.get(arn)
        if alias is None:
            return None
        weights = [int(r["weight"]) for r in alias.routing]
        chosen = random.choices(alias.routing, weights=weights)[0] if sum(weights) else alias.routing[0]
        return self.version(str(chosen["stateMachineVersionArn"])).record

    def publish(self, machine: MachineRecord, description: str) -> _Version:
        revision = self.revision(machine.arn)
        with self.lock:
            existing = self.versions.setdefault(machine.arn, [])
            if existing and existing[-1].revision == revision:
                return existing[-1]  # AWS: publishing an unchanged revision returns its version
            number = self.counters[machine.arn] = self.counters.get(machine.arn, 0) + 1
            frozen = dataclasses.replace(machine)  # shares the machine's executions
            version = _Version(f"{machine.arn}:{number}", frozen, revision, now(), description)
            existing.append(version)
        return version


def _versions(backend: Backend) -> Versions:
    return backend.component(Versions)


def update_state_machine(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    machine_arn = r.required_text("stateMachineArn", high=ARN_MAX_CHARS)
    text = r.text("definition", low=1, high=DEFINITION_MAX_CHARS)
    role = r.text("roleArn", low=1, high=ARN_MAX_CHARS)
    logging_config, tracing = r.mapping("loggingConfiguration"), r.mapping("tracingConfiguration")
    publish = r.flag("publish")
    description = r.text("versionDescription", high=256) or ""
    r.check()
    if text is None and role is None and logging_config is None and tracing is None:
        raise ApiError(
            "MissingRequiredParameter",
            "Either the definition, the roleArn, the loggingConfiguration or the tracingConfiguration "
            "must be specified",
        )
    machine = backend.machine(machine_arn)
    parsed = backend.parse(text, express=machine.express) if text is not None else None
    versions = _versions(backend)
    with backend.lock:
        if text is not None and parsed is not None:
            machine.definition_text, machine.definition = text, parsed
        if role is not None:
            machine.role_arn = role
        if logging_config is not None:
            machine.logging = {**machine.logging, **logging_config}
        if tracing is not None:
            machine.tracing = {**machine.tracing, **tracing}
    with versions.lock:
        versions.revisions[machine.arn] = revision = str(uuid.uuid4())
    answer: dict[str, Any] = {"updateDate": epoch(now()), "revisionId": revision}
    if publish:
        answer["stateMachineVersionArn"] = versions.publish(machine, description).arn
    return answer


def publish_state_machine_version(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    machine_arn = r.required_text("stateMachineArn", high=ARN_MAX_CHARS)
    revision = r.text("revisionId", high=1024)
    description = r.text("description", high=256) or ""
    r.check()
    machine = backend.machine(machine_arn)
    versions = _versions(backend)
    current = versions.revision(machine.arn)
    if revision is not None and revision != current:
        raise ApiError(
            "ConflictException",
            f"Failed to publish the State Machine version for revision {revision}. The current State Machine "
            f"revision is {current}.",
        )
    version = versions.publish(machine, description)
    return {"creationDate": epoch(version.created), "stateMachineVersionArn": version.arn}


def list_state_machine_versions(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    machine_arn = r.required_text("stateMachineArn", high=ARN_MAX_CHARS)
    r.number("maxResults", low=0, high=1000)
    r.text("nextToken", low=1, high=1024)
    r.check()
    backend.machine(machine_arn)
    versions = _versions(backend)
    with versions.lock:
        found = list(reversed(versions.versions.get(machine_arn, [])))
    return {
        "stateMachineVersions": [{"stateMachineVersionArn": v.arn, "creationDate": epoch(v.created)} for v in found]
    }


def delete_state_machine_version(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    arn = r.required_text("stateMachineVersionArn", high=ARN_MAX_CHARS)
    r.check()
    arn_parts(arn, ("stateMachine",))
    versions = _versions(backend)
    machine_arn = arn.rpartition(":")[0]
    with versions.lock:
        users = [a.arn for a in versions.aliases.values() if any(x["stateMachineVersionArn"] == arn for x in a.routing)]
        if users:
            raise ApiError(
                "ConflictException",
                f"Version to be deleted must not be referenced by an alias. Current list of aliases referencing "
                f"this version: {users}",
            )
        versions.versions[machine_arn] = [v for v in versions.versions.get(machine_arn, []) if v.arn != arn]
    return {}


def _routing(backend: Backend, request: dict[str, Any], machine_arn: str | None) -> tuple[list[dict[str, Any]], str]:
    """The alias's routing (one or two versions of one state machine, weights adding up to 100)."""
    routing = request.get("routingConfiguration")
    if not isinstance(routing, list) or not 1 <= len(routing) <= 2:
        raise ApiError("ValidationException", "The routingConfiguration must list one or two versions")
    rows: list[dict[str, Any]] = []
    for row in routing:
        arn, weight = (row.get("stateMachineVersionArn"), row.get("weight")) if isinstance(row, dict) else (None, None)
        if (
            not isinstance(arn, str)
            or isinstance(weight, bool)
            or not isinstance(weight, int)
            or not 0 <= weight <= 100
        ):
            raise ApiError("ValidationException", f"Invalid routing configuration entry: {row!r}")
        arn_parts(arn, ("stateMachine",))
        _versions(backend).version(arn)
        rows.append({"stateMachineVersionArn": arn, "weight": weight})
    owners = {str(r["stateMachineVersionArn"]).rpartition(":")[0] for r in rows}
    if len(owners) != 1 or (machine_arn is not None and owners != {machine_arn}):
        raise ApiError("ValidationException", "The versions of an alias must belong to one state machine")
    if sum(r["weight"] for r in rows) != 100 or len({r["stateMachineVersionArn"] for r in rows}) != len(rows):
        raise ApiError("ValidationException", "The weights of an alias's versions must add up to 100")
    return rows, owners.pop()


def create_state_machine_alias(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    name = r.required_text("name", high=80)
    description = r.text("description", high=256) or ""
    r.check()
    if not _ALIAS_NAME.match(name):
        raise ApiError("InvalidName", f"Invalid Name: '{name}'")
    check_name(name)
    routing, machine_arn = _routing(backend, request, None)
    backend.machine(machine_arn)
    versions = _versions(backend)
    alias_arn = f"{machine_arn}:{name}"
    with versions.lock:
        existing = versions.aliases.get(alias_arn)
        if existing is not None:
            if (existing.routing, existing.description) != (routing, description):
                raise ApiError(
                    "ConflictException", f"Alias already exists with a different configuration: '{alias_arn}'"
                )
            return {"stateMachineAliasArn": alias_arn, "creationDate": epoch(existing.created)}
        alias = versions.aliases[alias_arn] = _Alias(alias_arn, name, machine_arn, routing, description, now())
    return {"stateMachineAliasArn": alias_arn, "creationDate": epoch(alias.created)}


def _alias_arn(request: dict[str, Any]) -> str:
    r = ApiRequest(request)
    arn = r.required_text("stateMachineAliasArn", high=ARN_MAX_CHARS)
    r.check()
    arn_parts(arn, ("stateMachine",))
    return arn


def describe_state_machine_alias(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    alias = _versions(backend).alias(_alias_arn(request))
    return {
        "stateMachineAliasArn": alias.arn,
        "name": alias.name,
        "description": alias.description,
        "routingConfiguration": alias.routing,
        "creationDate": epoch(alias.created),
        "updateDate": epoch(alias.updated),
    }


def list_state_machine_aliases(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    machine_arn = r.required_text("stateMachineArn", high=ARN_MAX_CHARS)
    r.number("maxResults", low=0, high=1000)
    r.check()
    backend.machine(machine_arn)
    versions = _versions(backend)
    with versions.lock:
        found = [a for a in versions.aliases.values() if a.machine_arn == machine_arn]
    return {"stateMachineAliases": [{"stateMachineAliasArn": a.arn, "creationDate": epoch(a.created)} for a in found]}


def update_state_machine_alias(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    arn = _alias_arn(request)
    versions = _versions(backend)
    alias = versions.alias(arn)
    description = request.get("description")
    routing = _routing(backend, request, alias.machine_arn)[0] if "routingConfiguration" in request else None
    with versions.lock:
        if routing is not None:
            alias.routing = routing
        if isinstance(description, str):
            alias.description = description
        alias.updated = now()
    return {"updateDate": epoch(alias.updated)}


def delete_state_machine_alias(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    arn = _alias_arn(request)
    versions = _versions(backend)
    with versions.lock:
        versions.aliases.pop(arn, None)
    return {}


ACTIONS: dict[str, Action] = {
    "UpdateStateMachine": update_state_machine,
    "PublishStateMachineVersion": publish_state_machine_version,
    "ListStateMachineVersions": list_state_machine_versions,
    "DeleteStateMachineVersion": delete_state_machine_version,
    "CreateStateMachineAlias": create_state_machine_alias,
    "DescribeStateMachineAlias": describe_state_machine_alias,
    "ListStateMachineAliases": list_state_machine_aliases,
    "UpdateStateMachineAlias": update_state_machine_alias,
    "DeleteStateMachineAlias": delete_state_machine_alias,
}
