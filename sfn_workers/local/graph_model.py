"""What an execution did, read from its history, and what the pictures say about each state.

Shared by the Mermaid, SVG and HTML pictures (graph.py, graph_svg.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sfn_workers.local.asl.walk import nested_machines

__all__ = ["Trace", "children", "label", "status", "summary", "targets", "trace"]


@dataclass
class Trace:
    """The path of one execution, read from its history."""

    status: str | None = None
    entered: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)  # state -> last error it saw
    failed_state: str | None = None  # where the error began (innermost)
    failed_states: list[str] = field(default_factory=list)  # it and the states it failed on its way out
    error: str | None = None
    cause: str | None = None


_FAILURE_SUFFIXES = ("Failed", "TimedOut")


def trace(history: Iterable[Mapping[str, Any]]) -> Trace:
    """Entered states, transitions, retries and the failing state of an execution history.

    Each event's ``previousEventId`` leads back to the event before it in the same branch, so
    events are attributed to states even when Map iterations and Parallel branches interleave.
    """
    result = Trace()
    state_of: dict[int, str] = {}
    exited: dict[int, str] = {}  # id of a StateExited event -> the state it left
    failures: set[int] = set()
    compound: list[tuple[str, str]] = []  # (type, name) of the Parallel/Map states not yet left
    origin: dict[str, str] = {}  # error -> the first state that raised it most recently
    for event in history:
        kind = str(event.get("type", ""))
        eid = int(event.get("id", 0))
        previous = int(event.get("previousEventId", 0))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            state_of[eid] = name
            result.entered[name] += 1
            if kind in ("ParallelStateEntered", "MapStateEntered"):
                compound.append((kind[: -len("StateEntered")], name))
            before = exited.get(previous)
            if before is not None:
                result.transitions[(before, name)] += 1
            continue
        if kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            exited[eid] = name
            if kind in ("ParallelStateExited", "MapStateExited"):
                compound[:] = [c for c in compound if c[1] != name]
            continue
        owner = state_of.get(previous)
        if kind.startswith(("ParallelState", "MapState")):  # their previousEventId is not their branch
            kinds = [c for c in compound if kind.startswith(c[0])]
            owner = kinds[-1][1] if kinds else owner
        if owner is not None:
            state_of[eid] = owner
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        if kind in ("LambdaFunctionScheduled", "TaskScheduled") and previous in failures and owner:
            result.retries[owner] += 1
        elif kind.endswith(_FAILURE_SUFFIXES) and not kind.startswith(("Execution", "MapIteration")):
            failures.add(eid)
            error = details.get("error")
            if owner is not None and (error or not kind.startswith(("ParallelState", "MapState"))):
                result.errors[owner] = str(error or kind)
                if error and not kind.startswith(("ParallelState", "MapState")):
                    origin[str(error)] = owner
        if kind.startswith("Execution") and kind != "ExecutionStarted":
            result.status = {
                "ExecutionSucceeded": "SUCCEEDED",
                "ExecutionFailed": "FAILED",
                "ExecutionTimedOut": "TIMED_OUT",
                "ExecutionAborted": "ABORTED",
            }.get(kind, kind)
            result.error = details.get("error")
            result.cause = details.get("cause")
            if kind != "ExecutionSucceeded":
                outer = owner or (next(reversed(result.errors)) if result.errors else None)
                inner = origin.get(str(result.error), outer)
                result.failed_state = inner
                result.failed_states = [s for s in dict.fromkeys([inner, outer]) if s]
    return result


# -- the state graph -------------------------------------------------------------------------------


def targets(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(next state, label) for every way out of a state."""
    out: list[tuple[str, str]] = []
    for choice in state.get("Choices") or []:
        if isinstance(choice, Mapping) and isinstance(choice.get("Next"), str):
            out.append((choice["Next"], choice_label(choice)))
    if isinstance(state.get("Default"), str):
        out.append((state["Default"], "Default"))
    if isinstance(state.get("Next"), str):
        out.append((state["Next"], ""))
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
            out.append((catcher["Next"], "Catch " + ", ".join(catcher.get("ErrorEquals") or [])))
    return out


def choice_label(rule: Mapping[str, Any]) -> str:
    variable = rule.get("Variable", "")
    for key, value in rule.items():
        if key not in ("Variable", "Next", "Comment", "Assign", "Output"):
            if key in ("And", "Or", "Not"):
                return key
            if key == "Condition":
                return str(value)[:40]
            return f"{variable} {key} {json.dumps(value)}"[:48]
    return "Choice"


def children(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [inner for _, inner in nested_machines(state) if isinstance(inner, Mapping)]


def status(name: str, run: Trace | None) -> str:
    if run is None:
        return "plain"
    if name in run.failed_states:
        return "failed"
    if run.entered.get(name):
        return "visited"
    return "unvisited"


def label(name: str, state: Mapping[str, Any], run: Trace | None) -> str:
    text = f"{name} ({state.get('Type', '?')})"
    if run is not None:
        if run.entered.get(name, 0) > 1:
            text += f" x{run.entered[name]}"
        if run.retries.get(name):
            text += f" ↻{run.retries[name]}"
    return text


def summary(run: Trace | None) -> str:
    if run is None:
        return ""
    text = f"**{run.status}**"
    if run.failed_state:
        text += f" in state `{run.failed_state}`"
    if run.error:
        text += f": `{run.error}`"
    retries = sum(run.retries.values())
    text += f" — {sum(run.entered.values())} states entered, {retries} retr{'y' if retries == 1 else 'ies'}."
    return text
