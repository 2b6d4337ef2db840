"""The fields of a state: which ones each type allows per query language, and whether their paths,
templates, variable names and JSONata expressions are valid (checked once, at parse time).

AWS refuses a definition with any other field, which catches typos such as ``Nxt``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import DefinitionError
from .intrinsics import compile_intrinsic, is_intrinsic
from .paths import PathError, compile_path
from .templates import jsonata_syntax_error

__all__ = ["STATE_TYPES", "allowed_fields", "check_assign", "check_jsonata", "check_paths"]

STATE_TYPES = frozenset(["Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"])

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


def allowed_fields(typ: str, ql: str) -> frozenset[str]:
    """The fields a state may have (AWS rejects any other, which catches typos such as 'Nxt')."""
    io = _JSONPATH_IO[typ] if ql == "JSONPath" else _JSONATA_IO.get(typ, frozenset(["Output"]))
    return _COMMON | _BY_TYPE[typ] | io


def _fail(name: str, fld: str, msg: str) -> DefinitionError:
    return DefinitionError(f"state '{name}': field '{fld}' {msg}")


def check_paths(name: str, body: Mapping[str, Any]) -> None:
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


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_EVALUATED = frozenset(["Result", "ItemProcessor", "Iterator", "Branches", "Retry", "Comment"])


def check_assign(name: str, where: str, assign: Any, ql: str) -> None:
    """Variable names are identifiers; ``states`` is reserved (it is JSONata's ``$states``)."""
    if not isinstance(assign, Mapping):
        raise _fail(name, where, "must be an object")
    for key in assign:
        var = key[:-2] if ql == "JSONPath" and key.endswith(".$") else key
        if not _VAR_NAME.fullmatch(var) or var == "states":
            raise _fail(name, f"{where}.{key}", f"'{var}' is not a valid variable name")
    if ql == "JSONPath":
        _check_template(name, where, assign)


def check_jsonata(name: str, where: str, value: Any) -> None:
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
            check_jsonata(name, f"{where}.{k}" if where else str(k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_jsonata(name, f"{where}[{i}]", v)
