"""Parse and validate an ASL definition into a :class:`Definition` the interpreter runs.

Validation happens once, up front, and every message names the state and the field, so that
``sfn-workers run`` can say exactly what is wrong before anything runs. Choice rules and paths
are compiled here; payload templates are compiled lazily by the evaluation layer (cached).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .choice import compile_rule
from .errors import DefinitionError
from .intrinsics import compile_intrinsic, is_intrinsic
from .paths import PathError, compile_path
from .templates import jsonata_syntax_error

__all__ = ["Catcher", "Definition", "DefinitionError", "Machine", "Retrier", "StateSpec", "parse_definition"]

STATE_TYPES = frozenset(["Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"])
_TERMINAL = frozenset(["Choice", "Succeed", "Fail"])
_JSONPATH_ONLY = ("InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath")
_JSONATA_ONLY = ("Arguments", "Output")


@dataclass(slots=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: str = "NONE"


@dataclass(slots=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"
    has_result_path: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StateSpec:
    """One state, validated; ``raw`` is the state's JSON object as written."""

    name: str
    type: str
    raw: Mapping[str, Any]
    query_language: str
    next: str | None
    end: bool
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    choices: tuple[tuple[Any, str, Mapping[str, Any]], ...] = ()  # (rule or condition, next, raw)
    default: str | None = None
    branches: tuple[Machine, ...] = ()
    processor: Machine | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # compiled templates, filled on first use

    @property
    def jsonata(self) -> bool:
        return self.query_language == "JSONata"


@dataclass(slots=True)
class Machine:
    """A StartAt + States graph: the whole definition, a Parallel branch or a Map's item processor."""

    start_at: str
    states: dict[str, StateSpec]
    query_language: str


@dataclass(slots=True)
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
        _check_targets(spec, specs)
    _check_reachable(start, specs, prefix)
    return Machine(start, specs, ql)


def _check_reachable(start: str, specs: Mapping[str, StateSpec], prefix: str) -> None:
    """AWS refuses a definition with a state no transition leads to; so do we."""
    seen = {start}
    todo = [start]
    while todo:
        spec = specs[todo.pop()]
        targets = [spec.next, spec.default, *(n for _, n, _ in spec.choices), *(c.next for c in spec.catch)]
        for t in targets:
            if t is not None and t not in seen:
                seen.add(t)
                todo.append(t)
    unreachable = [name for name in specs if name not in seen]
    if unreachable:
        raise DefinitionError(f"{prefix}state '{unreachable[0]}' is not reachable from StartAt '{start}'")


def _check_targets(spec: StateSpec, specs: Mapping[str, StateSpec]) -> None:
    def check(target: str | None, fld: str) -> None:
        if target is not None and target not in specs:
            raise DefinitionError(f"state '{spec.name}': field '{fld}' names unknown state '{target}'")

    check(spec.next, "Next")
    check(spec.default, "Default")
    for i, (_, nxt, _raw) in enumerate(spec.choices):
        check(nxt, f"Choices[{i}].Next")
    for i, c in enumerate(spec.catch):
        check(c.next, f"Catch[{i}].Next")


def _fail(name: str, fld: str, msg: str) -> DefinitionError:
    return DefinitionError(f"state '{name}': field '{fld}' {msg}")


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
    unknown = sorted(set(body) - _allowed_fields(typ, ql))
    if unknown:
        raise _fail(name, unknown[0], f"is not supported by a {typ} state ({ql})")
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
    spec = StateSpec(name, typ, body, ql, nxt, end is True)
    if ql == "JSONPath":
        _check_paths(name, body)
    else:
        _check_jsonata(name, "", body)
    if "Assign" in body:
        _check_assign(name, "Assign", body["Assign"], ql)
    if typ in ("Task", "Parallel", "Map"):
        spec.retry = tuple(_retrier(name, i, r) for i, r in enumerate(_list(name, body, "Retry")))
        spec.catch = tuple(_catcher(name, i, c, ql) for i, c in enumerate(_list(name, body, "Catch")))
    check = _CHECKS.get(typ)
    if check is not None:
        check(spec, body, ql)
    return spec


def _list(name: str, body: Mapping[str, Any], fld: str) -> list[Any]:
    v = body.get(fld, [])
    if not isinstance(v, list):
        raise _fail(name, fld, "must be an array")
    return v


def _check_paths(name: str, body: Mapping[str, Any]) -> None:
    for fld in ("InputPath", "OutputPath", "ResultPath", "ItemsPath"):
        v = body.get(fld)
        if v is None:
            continue
        try:
            p = compile_path(v)
        except (PathError, TypeError) as exc:
            raise _fail(name, fld, f"is not a valid path: {exc}") from exc
        if fld == "ResultPath" and (p.root != "$" or not p.is_reference):
            raise _fail(name, fld, "must be a reference path (names and indexes only)")
    for fld in ("Parameters", "ResultSelector", "ItemSelector"):
        if fld in body:
            _check_template(name, fld, body[fld])


def _check_template(name: str, where: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and k.endswith(".$"):
                if not isinstance(v, str):
                    raise _fail(name, f"{where}.{k}", "must be a path or intrinsic function string")
                try:
                    if is_intrinsic(v):
                        compile_intrinsic(v)
                    else:
                        compile_path(v)
                except (ValueError, TypeError) as exc:
                    raise _fail(name, f"{where}.{k}", f"is invalid: {exc}") from exc
            else:
                _check_template(name, f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_template(name, f"{where}[{i}]", v)


_COMMON = frozenset(["Type", "Comment", "QueryLanguage"])
_BY_TYPE: dict[str, frozenset[str]] = {
    "Task": frozenset(
        [
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Retry",
            "Catch",
            "Credentials",
            "Next",
            "End",
            "Assign",
        ]
    ),
    "Pass": frozenset(["Result", "Next", "End", "Assign"]),
    "Choice": frozenset(["Choices", "Default", "Assign"]),
    "Wait": frozenset(["Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Next", "End", "Assign"]),
    "Succeed": frozenset(),
    "Fail": frozenset(["Error", "Cause", "ErrorPath", "CausePath"]),
    "Parallel": frozenset(["Branches", "Retry", "Catch", "Next", "End", "Assign"]),
    "Map": frozenset(
        [
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Assign",
        ]
    ),
}
_JSONPATH_IO: dict[str, frozenset[str]] = {
    "Task": frozenset(["InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector"]),
    "Pass": frozenset(["InputPath", "OutputPath", "Parameters", "ResultPath"]),
    "Choice": frozenset(["InputPath", "OutputPath"]),
    "Wait": frozenset(["InputPath", "OutputPath"]),
    "Succeed": frozenset(["InputPath", "OutputPath"]),
    "Fail": frozenset(),
    "Parallel": frozenset(["InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector"]),
    "Map": frozenset(["InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector"]),
}
_JSONATA_IO: dict[str, frozenset[str]] = {
    "Task": frozenset(["Arguments", "Output"]),
    "Parallel": frozenset(["Arguments", "Output"]),
    "Fail": frozenset(),
}


def _allowed_fields(typ: str, ql: str) -> frozenset[str]:
    """The fields a state may have (AWS rejects any other, which catches typos such as 'Nxt')."""
    io = _JSONPATH_IO[typ] if ql == "JSONPath" else _JSONATA_IO.get(typ, frozenset(["Output"]))
    return _COMMON | _BY_TYPE[typ] | io


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_EVALUATED = frozenset(["Result", "ItemProcessor", "Iterator", "Branches", "Retry", "Comment"])


def _check_assign(name: str, where: str, assign: Any, ql: str) -> None:
    """Variable names are identifiers; ``states`` is reserved (it is JSONata's ``$states``)."""
    if not isinstance(assign, Mapping):
        raise _fail(name, where, "must be an object")
    for key in assign:
        var = key[:-2] if ql == "JSONPath" and key.endswith(".$") else key
        if not _VAR_NAME.fullmatch(var) or var == "states":
            raise _fail(name, f"{where}.{key}", f"'{var}' is not a valid variable name")
    if ql == "JSONPath":
        _check_template(name, where, assign)


def _check_jsonata(name: str, where: str, value: Any) -> None:
    """Every ``{% ... %}`` string must parse, so a typo is reported before the execution starts."""
    if isinstance(value, str):
        if value.startswith("{%") and value.endswith("%}") and len(value) >= 4:
            err = jsonata_syntax_error(value[2:-2].strip())
            if err is not None:
                raise _fail(name, where or "(state)", f"holds an invalid JSONata expression: {err}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if where == "" and k in _NOT_EVALUATED:
                continue
            _check_jsonata(name, f"{where}.{k}" if where else str(k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_jsonata(name, f"{where}[{i}]", v)


_ERROR_FIELDS = ("IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds")


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
    r = Retrier(_error_equals(name, where, raw))
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
    r.interval_seconds, r.max_attempts, r.backoff_rate, r.max_delay_seconds, r.jitter = iv, ma, br, md, jit
    return r


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
        _check_assign(name, f"{where}.Assign", raw["Assign"], ql)
    return Catcher(_error_equals(name, where, raw), nxt, rp, "ResultPath" in raw, raw)


def _check_task(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    res = body.get("Resource")
    if not isinstance(res, str) or not res:
        raise _fail(spec.name, "Resource", "is required and must be a string")
    for fld in ("TimeoutSeconds", "HeartbeatSeconds"):
        v = body.get(fld)
        if v is None:
            continue
        if ql == "JSONata" and isinstance(v, str):
            continue
        if not _is_int(v) or v <= 0:
            raise _fail(spec.name, fld, "must be a positive integer")
        if fld + "Path" in body:
            raise DefinitionError(f"state '{spec.name}': '{fld}' and '{fld}Path' are mutually exclusive")
    t, h = body.get("TimeoutSeconds"), body.get("HeartbeatSeconds")
    if isinstance(t, int) and isinstance(h, int) and h >= t:
        raise _fail(spec.name, "HeartbeatSeconds", "must be smaller than TimeoutSeconds")


def _check_choice(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    choices = body.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(spec.name, "Choices", "must be a non-empty array")
    out = []
    for i, c in enumerate(choices):
        where = f"state '{spec.name}': field 'Choices[{i}]'"
        if not isinstance(c, Mapping) or not isinstance(c.get("Next"), str):
            raise DefinitionError(f"{where}: 'Next' is required")
        if ql == "JSONata":
            if "Condition" not in c:
                raise DefinitionError(f"{where}: 'Condition' is required in a JSONata Choice")
            out.append((c["Condition"], c["Next"], c))
        else:
            out.append((compile_rule(c, where), c["Next"], c))
    spec.choices = tuple(out)
    d = body.get("Default")
    if d is not None and not isinstance(d, str):
        raise _fail(spec.name, "Default", "must be a state name")
    spec.default = d


def _check_wait(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    present = [f for f in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if f in body]
    if len(present) != 1:
        raise DefinitionError(
            f"state '{spec.name}': exactly one of Seconds, Timestamp, SecondsPath, TimestampPath is required"
        )
    s = body.get("Seconds")
    if s is not None and not (ql == "JSONata" and isinstance(s, str)) and (not _is_int(s) or s < 0):
        raise _fail(spec.name, "Seconds", "must be a non-negative integer")


def _check_fail(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
        if a in body and b in body:
            raise DefinitionError(f"state '{spec.name}': '{a}' and '{b}' are mutually exclusive")


def _check_parallel(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    branches = body.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise _fail(spec.name, "Branches", "must be a non-empty array")
    spec.branches = tuple(
        _machine(b, ql, f"state '{spec.name}': field 'Branches[{i}]'")
        if isinstance(b, Mapping)
        else _bad_branch(spec, i)
        for i, b in enumerate(branches)
    )


def _bad_branch(spec: StateSpec, i: int) -> Machine:
    raise _fail(spec.name, f"Branches[{i}]", "must be an object")


def _check_map(spec: StateSpec, body: Mapping[str, Any], ql: str) -> None:
    proc = body.get("ItemProcessor", body.get("Iterator"))
    fld = "ItemProcessor" if "ItemProcessor" in body else "Iterator"
    if not isinstance(proc, Mapping):
        raise _fail(spec.name, "ItemProcessor", "is required (or the older 'Iterator')")
    if "ItemSelector" in body and "Parameters" in body:
        raise DefinitionError(f"state '{spec.name}': 'ItemSelector' and 'Parameters' are mutually exclusive")
    mc = body.get("MaxConcurrency")
    if mc is not None and not (ql == "JSONata" and isinstance(mc, str)) and (not _is_int(mc) or mc < 0):
        raise _fail(spec.name, "MaxConcurrency", "must be a non-negative integer")
    spec.processor = _machine(proc, ql, f"state '{spec.name}': field '{fld}'")


_CHECKS = {
    "Task": _check_task,
    "Choice": _check_choice,
    "Wait": _check_wait,
    "Fail": _check_fail,
    "Parallel": _check_parallel,
    "Map": _check_map,
}
