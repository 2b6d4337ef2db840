"""Parse and validate an ASL definition into the typed state specs (specs.py) the interpreter runs.

Validation happens once, up front, and every message names the state and the field, so that
``sfn-workers run`` can say exactly what is wrong before anything runs. Choice rules and paths
are compiled here, each state's query language object is chosen here, and each state becomes a
frozen spec of its type; payload templates are compiled on first use (query.Field).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .choice import compile_rule
from .distributed import is_distributed
from .errors import DefinitionError
from .fields import STATE_TYPES, allowed_fields, check_assign, check_jsonata, check_paths
from .paths import PathError, compile_path
from .query import JSONATA, JSONPATH, DataFlow, Field
from .specs import (
    ABSENT,
    Catcher,
    ChoiceRule,
    ChoiceSpec,
    DistributedMapSpec,
    FailSpec,
    Machine,
    MapSpec,
    ParallelSpec,
    PassSpec,
    Retrier,
    StateSpec,
    SucceedSpec,
    TaskSpec,
    WaitSpec,
)
from .templates import is_jsonata
from .walk import nested_machines

__all__ = ["Catcher", "Definition", "DefinitionError", "Machine", "Retrier", "StateSpec", "parse_definition"]

_TERMINAL = frozenset(["Choice", "Succeed", "Fail"])
_JSONPATH_ONLY = ("InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath")
_JSONATA_ONLY = ("Arguments", "Output")


@dataclass(frozen=True, slots=True)
class Definition:
    """A validated state machine."""

    raw: Mapping[str, Any]
    machine: Machine
    timeout_seconds: float | None
    query_language: str

    @property
    def start_at(self) -> str:
        return self.machine.start_at

    @property
    def states(self) -> dict[str, StateSpec]:
        return self.machine.states


def parse_definition(source: str | Mapping[str, Any]) -> Definition:
    """Parse ASL (JSON text or an already-parsed object) and validate it; raises DefinitionError."""
    if isinstance(source, str | bytes):
        try:
            raw = json.loads(source)
        except ValueError as exc:
            raise DefinitionError(f"definition is not valid JSON: {exc}") from exc
    else:
        raw = source
    if not isinstance(raw, Mapping):
        raise DefinitionError("definition must be a JSON object")
    ql = raw.get("QueryLanguage", "JSONPath")
    if ql not in ("JSONPath", "JSONata"):
        raise DefinitionError(f"field 'QueryLanguage' must be 'JSONPath' or 'JSONata', not {ql!r}")
    timeout = raw.get("TimeoutSeconds")
    if timeout is not None and (not _is_int(timeout) or timeout <= 0):
        raise DefinitionError("field 'TimeoutSeconds' must be a positive integer")
    machine = _machine(raw, ql, "")
    return Definition(raw, machine, timeout, ql)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _machine(raw: Mapping[str, Any], ql: str, where: str) -> Machine:
    prefix = f"{where}: " if where else ""
    start = raw.get("StartAt")
    states = raw.get("States")
    if not isinstance(states, Mapping) or not states:
        raise DefinitionError(f"{prefix}field 'States' must be a non-empty object")
    if not isinstance(start, str):
        raise DefinitionError(f"{prefix}field 'StartAt' is required")
    if start not in states:
        raise DefinitionError(f"{prefix}field 'StartAt' names unknown state '{start}'")
    ql = raw.get("QueryLanguage", ql)
    specs = {name: _state(name, body, ql) for name, body in states.items()}
    for spec in specs.values():
        for fld, target in spec.targets():
            if target not in specs:
                raise DefinitionError(f"state '{spec.name}': field '{fld}' names unknown state '{target}'")
    _check_reachable(start, specs, prefix)
    return Machine(start, specs, ql, raw)


def _check_reachable(start: str, specs: Mapping[str, StateSpec], prefix: str) -> None:
    """AWS refuses a definition with a state no transition leads to; so do we."""
    seen = {start}
    todo = [start]
    while todo:
        for _, t in specs[todo.pop()].targets():
            if t not in seen:
                seen.add(t)
                todo.append(t)
    unreachable = [name for name in specs if name not in seen]
    if unreachable:
        raise DefinitionError(f"{prefix}state '{unreachable[0]}' is not reachable from StartAt '{start}'")


def _fail(name: str, fld: str, msg: str) -> DefinitionError:
    return DefinitionError(f"state '{name}': field '{fld}' {msg}")


def _field(body: Mapping[str, Any], key: str, name: str | None = None) -> Field | None:
    return Field(name or key, body[key]) if key in body else None


def _state(name: str, body: Any, parent_ql: str) -> StateSpec:
    if not isinstance(body, Mapping):
        raise DefinitionError(f"state '{name}': must be an object")
    if len(name) > 80:
        raise DefinitionError(f"state '{name}': state names are limited to 80 characters")
    typ = body.get("Type")
    if typ not in STATE_TYPES:
        raise _fail(name, "Type", f"must be one of {', '.join(sorted(STATE_TYPES))}, not {typ!r}")
    ql = body.get("QueryLanguage", parent_ql)
    if ql not in ("JSONPath", "JSONata"):
        raise _fail(name, "QueryLanguage", "must be 'JSONPath' or 'JSONata'")
    if parent_ql == "JSONata" and ql == "JSONPath" and "QueryLanguage" in body:
        raise _fail(name, "QueryLanguage", "cannot be JSONPath inside a JSONata state machine")
    banned = _JSONPATH_ONLY if ql == "JSONata" else _JSONATA_ONLY
    for fld in banned:
        if fld in body:
            raise _fail(name, fld, f"is not allowed in a {ql} state")
    unknown = sorted(set(body) - allowed_fields(typ, ql))
    if unknown:
        raise _fail(name, unknown[0], f"is not supported by a {typ} state ({ql})")
    nxt, end = _next_or_end(name, typ, body)
    if ql == "JSONPath":
        check_paths(name, body)
    else:
        check_jsonata(name, "", body)
    if "Assign" in body:
        check_assign(name, "Assign", body["Assign"], ql)
    common: dict[str, Any] = {
        "name": name,
        "type": typ,
        "raw": body,
        "query": JSONATA if ql == "JSONata" else JSONPATH,
        "next": nxt,
        "end": end,
        "flow": _flow(body, ql, typ),
    }
    if typ in ("Task", "Parallel", "Map"):
        common["retry"] = tuple(_retrier(name, i, r) for i, r in enumerate(_list(name, body, "Retry")))
        common["catch"] = tuple(_catcher(name, i, c, ql) for i, c in enumerate(_list(name, body, "Catch")))
    return _BUILDERS[typ](common, body, ql)


def _next_or_end(name: str, typ: str, body: Mapping[str, Any]) -> tuple[str | None, bool]:
    nxt = body.get("Next")
    end = body.get("End", False)
    if typ in _TERMINAL:
        if nxt is not None or "End" in body:
            raise DefinitionError(f"state '{name}': a {typ} state has no 'Next' or 'End'")
    else:
        if (nxt is None) == (end is not True):
            raise DefinitionError(f"state '{name}': exactly one of 'Next' and 'End: true' is required")
        if nxt is not None and not isinstance(nxt, str):
            raise _fail(name, "Next", "must be a state name")
    return nxt, end is True


def _flow(body: Mapping[str, Any], ql: str, typ: str) -> DataFlow:
    """The data-flow fields; a Map's Parameters is its item selector, not its input's."""
    if ql == "JSONata":
        return DataFlow(
            arguments=_field(body, "Arguments"), output=_field(body, "Output"), assign=_field(body, "Assign")
        )
    return DataFlow(
        input_path=body.get("InputPath", "$"),
        output_path=body.get("OutputPath", "$"),
        result_path=body.get("ResultPath", "$"),
        parameters=None if typ == "Map" else _field(body, "Parameters"),
        result_selector=_field(body, "ResultSelector"),
        assign=_field(body, "Assign"),
    )


def _list(name: str, body: Mapping[str, Any], fld: str) -> list[Any]:
    v = body.get(fld, [])
    if not isinstance(v, list):
        raise _fail(name, fld, "must be an array")
    return v


def _error_equals(name: str, where: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
    errs = raw.get("ErrorEquals")
    if not isinstance(errs, list) or not errs or not all(isinstance(e, str) for e in errs):
        raise _fail(name, f"{where}.ErrorEquals", "must be a non-empty array of error names")
    if "States.ALL" in errs and len(errs) > 1:
        raise _fail(name, f"{where}.ErrorEquals", "States.ALL must appear alone")
    return tuple(errs)


def _retrier(name: str, i: int, raw: Any) -> Retrier:
    where = f"Retry[{i}]"
    if not isinstance(raw, Mapping):
        raise _fail(name, where, "must be an object")
    errors = _error_equals(name, where, raw)
    iv = raw.get("IntervalSeconds", 1)
    if not _is_int(iv) or iv < 1:
        raise _fail(name, f"{where}.IntervalSeconds", "must be a positive integer")
    ma = raw.get("MaxAttempts", 3)
    if not _is_int(ma) or ma < 0:
        raise _fail(name, f"{where}.MaxAttempts", "must be a non-negative integer")
    br = raw.get("BackoffRate", 2.0)
    if isinstance(br, bool) or not isinstance(br, int | float) or br < 1.0:
        raise _fail(name, f"{where}.BackoffRate", "must be a number >= 1.0")
    md = raw.get("MaxDelaySeconds")
    if md is not None and (not _is_int(md) or md < 1):
        raise _fail(name, f"{where}.MaxDelaySeconds", "must be a positive integer")
    jit = raw.get("JitterStrategy", "NONE")
    if jit not in ("NONE", "FULL"):
        raise _fail(name, f"{where}.JitterStrategy", "must be 'FULL' or 'NONE'")
    return Retrier(errors, iv, ma, br, md, jit)


def _catcher(name: str, i: int, raw: Any, ql: str) -> Catcher:
    where = f"Catch[{i}]"
    if not isinstance(raw, Mapping):
        raise _fail(name, where, "must be an object")
    nxt = raw.get("Next")
    if not isinstance(nxt, str):
        raise _fail(name, f"{where}.Next", "is required")
    rp = raw.get("ResultPath", "$")
    if ql == "JSONata" and "ResultPath" in raw:
        raise _fail(name, f"{where}.ResultPath", "is not allowed in a JSONata state")
    if rp is not None:
        try:
            p = compile_path(rp)
        except (PathError, TypeError) as exc:
            raise _fail(name, f"{where}.ResultPath", f"is not a valid path: {exc}") from exc
        if not p.is_reference or p.root != "$":
            raise _fail(name, f"{where}.ResultPath", "must be a reference path")
    if "Assign" in raw:
        check_assign(name, f"{where}.Assign", raw["Assign"], ql)
    assign = _field(raw, "Assign", "Catch.Assign")
    output = _field(raw, "Output", "Catch.Output") if ql == "JSONata" else None
    return Catcher(_error_equals(name, where, raw), nxt, rp, assign, output)


# -- one builder per state type: validate what is particular to it, then make its spec -------------


def _pass(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    # A JSONata Pass state's output is its Output (or its input); Result is JSONPath's.
    return PassSpec(**common, result=body.get("Result", ABSENT) if ql == "JSONPath" else ABSENT)


def _succeed(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    return SucceedSpec(**common)


def _task(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    res = body.get("Resource")
    if not isinstance(res, str) or not res:
        raise _fail(name, "Resource", "is required and must be a string")
    for fld in ("TimeoutSeconds", "HeartbeatSeconds"):
        v = body.get(fld)
        if v is None:
            continue
        if ql == "JSONata" and isinstance(v, str):
            continue
        if not _is_int(v) or v <= 0:
            raise _fail(name, fld, "must be a positive integer")
        if fld + "Path" in body:
            raise DefinitionError(f"state '{name}': '{fld}' and '{fld}Path' are mutually exclusive")
    t, h = body.get("TimeoutSeconds"), body.get("HeartbeatSeconds")
    if isinstance(t, int) and isinstance(h, int) and h >= t:
        raise _fail(name, "HeartbeatSeconds", "must be smaller than TimeoutSeconds")
    return TaskSpec(
        **common,
        resource=res,
        timeout=_field(body, "TimeoutSeconds"),
        timeout_path=body.get("TimeoutSecondsPath"),
        heartbeat=_field(body, "HeartbeatSeconds"),
        heartbeat_path=body.get("HeartbeatSecondsPath"),
    )


def _choice(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    choices = body.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(name, "Choices", "must be a non-empty array")
    rules = []
    for i, c in enumerate(choices):
        where = f"state '{name}': field 'Choices[{i}]'"
        if not isinstance(c, Mapping) or not isinstance(c.get("Next"), str):
            raise DefinitionError(f"{where}: 'Next' is required")
        if ql == "JSONata":
            if "Condition" not in c:
                raise DefinitionError(f"{where}: 'Condition' is required in a JSONata Choice")
            cond = c["Condition"]
            test = Field(f"Choices[{i}].Condition", cond) if is_jsonata(cond) else cond
            rules.append(ChoiceRule(test, c["Next"], _field(c, "Assign"), _field(c, "Output")))
        else:
            rules.append(ChoiceRule(compile_rule(c, where), c["Next"], _field(c, "Assign", f"Choices[{i}].Assign")))
    d = body.get("Default")
    if d is not None and not isinstance(d, str):
        raise _fail(name, "Default", "must be a state name")
    return ChoiceSpec(**common, choices=tuple(rules), default=d)


def _wait(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    present = [f for f in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if f in body]
    if len(present) != 1:
        raise DefinitionError(
            f"state '{name}': exactly one of Seconds, Timestamp, SecondsPath, TimestampPath is required"
        )
    s = body.get("Seconds")
    if s is not None and not (ql == "JSONata" and isinstance(s, str)) and (not _is_int(s) or s < 0):
        raise _fail(name, "Seconds", "must be a non-negative integer")
    return WaitSpec(
        **common,
        seconds=_field(body, "Seconds"),
        seconds_path=body.get("SecondsPath"),
        timestamp=_field(body, "Timestamp"),
        timestamp_path=body.get("TimestampPath"),
    )


def _fail_state(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
        if a in body and b in body:
            raise DefinitionError(f"state '{name}': '{a}' and '{b}' are mutually exclusive")
    return FailSpec(
        **common,
        error=_field(body, "Error"),
        error_path=body.get("ErrorPath"),
        cause=_field(body, "Cause"),
        cause_path=body.get("CausePath"),
    )


def _nested(name: str, body: Mapping[str, Any], ql: str) -> list[Machine]:
    """The state's nested machines (Parallel branches, a Map's processor), each validated."""
    out = []
    for fld, inner in nested_machines(body):
        if not isinstance(inner, Mapping):
            raise _fail(name, fld, "must be an object")
        out.append(_machine(inner, ql, f"state '{name}': field '{fld}'"))
    return out


def _parallel(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    branches = body.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise _fail(name, "Branches", "must be a non-empty array")
    return ParallelSpec(**common, branches=tuple(_nested(name, body, ql)))


def _map(common: dict[str, Any], body: Mapping[str, Any], ql: str) -> StateSpec:
    name = common["name"]
    if not isinstance(body.get("ItemProcessor", body.get("Iterator")), Mapping):
        raise _fail(name, "ItemProcessor", "is required (or the older 'Iterator')")
    if "ItemSelector" in body and "Parameters" in body:
        raise DefinitionError(f"state '{name}': 'ItemSelector' and 'Parameters' are mutually exclusive")
    mc = body.get("MaxConcurrency")
    if mc is not None and not (ql == "JSONata" and isinstance(mc, str)) and (not _is_int(mc) or mc < 0):
        raise _fail(name, "MaxConcurrency", "must be a non-negative integer")
    fields: dict[str, Any] = {
        "processor": _nested(name, body, ql)[0],
        "items": _field(body, "Items") if ql == "JSONata" else None,
        "items_path": body.get("ItemsPath", "$"),
        "item_selector": _field(body, "ItemSelector") or _field(body, "Parameters"),
        "max_concurrency": _field(body, "MaxConcurrency"),
        "max_concurrency_path": body.get("MaxConcurrencyPath"),
        "tolerated_count": _field(body, "ToleratedFailureCount"),
        "tolerated_count_path": body.get("ToleratedFailureCountPath"),
        "tolerated_percentage": _field(body, "ToleratedFailurePercentage"),
        "tolerated_percentage_path": body.get("ToleratedFailurePercentagePath"),
    }
    if not is_distributed(body):
        return MapSpec(**common, **fields)
    return DistributedMapSpec(**common, **fields, **_distributed(body, ql))


def _distributed(body: Mapping[str, Any], ql: str) -> dict[str, Any]:
    """ItemReader / ItemBatcher / ResultWriter of a Distributed Map (their parameters are Arguments in JSONata)."""
    args = "Arguments" if ql == "JSONata" else "Parameters"
    out: dict[str, Any] = {}
    reader = body.get("ItemReader")
    if isinstance(reader, Mapping):
        config = reader.get("ReaderConfig") or {}
        path = config.get("MaxItemsPath") if ql == "JSONPath" else None
        out["reader"] = reader
        out["reader_arguments"] = Field(f"ItemReader.{args}", reader.get(args, {}))
        out["max_items"] = None if path else _field(config, "MaxItems", "ItemReader.ReaderConfig.MaxItems")
        out["max_items_path"] = path
    batcher = body.get("ItemBatcher")
    if isinstance(batcher, Mapping):
        out["batcher"] = batcher
        out["per_batch"] = _field(batcher, "MaxItemsPerBatch", "ItemBatcher.MaxItemsPerBatch")
        out["per_batch_path"] = batcher.get("MaxItemsPerBatchPath")
        out["bytes_per_batch"] = _field(batcher, "MaxInputBytesPerBatch", "ItemBatcher.MaxInputBytesPerBatch")
        out["bytes_per_batch_path"] = batcher.get("MaxInputBytesPerBatchPath")
        out["batch_input"] = _field(batcher, "BatchInput", "ItemBatcher.BatchInput")
    writer = body.get("ResultWriter")
    if isinstance(writer, Mapping):
        out["writer_arguments"] = Field(f"ResultWriter.{args}", writer.get(args, {}))
    return out


_BUILDERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any], str], StateSpec]] = {
    "Pass": _pass,
    "Succeed": _succeed,
    "Fail": _fail_state,
    "Choice": _choice,
    "Wait": _wait,
    "Task": _task,
    "Parallel": _parallel,
    "Map": _map,
}
