"""Choice rules of the JSONPath query language, compiled once into predicates over the state input.

A rule whose ``Variable`` (or ``...Path`` operand) is missing raises ``States.Runtime`` - except
``IsPresent``, which exists to ask. Comparisons across types are simply false, as on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from .errors import DefinitionError, StatesError
from .paths import JsonPath, PathError, compile_path

__all__ = ["OPERATORS", "compile_rule", "glob_match", "parse_timestamp"]

Lookup = Callable[[JsonPath], Any]
Rule = Callable[[Lookup], bool]

_TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as AWS accepts it (upper-case ``T``, ``Z`` or an offset), else None."""
    if not isinstance(value, str):
        return None
    m = _TS.match(value)
    if not m:
        return None
    frac = (m.group(7) or "")[:7].ljust(7, "0")[1:] if m.group(7) else ""
    tz = "+00:00" if m.group(8) == "Z" else m.group(8)
    text = f"{value[:19]}{'.' + frac if frac else ''}{tz}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _string_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: isinstance(a, str) and isinstance(b, str) and op(a, b)


def _numeric_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: _is_number(a) and _is_number(b) and op(a, b)


def _ts_cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        ta, tb = parse_timestamp(a), parse_timestamp(b)
        return ta is not None and tb is not None and op(ta, tb)

    return cmp


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


@lru_cache(maxsize=1024)
def _glob_parts(pattern: str) -> tuple[str, ...]:
    """The literal pieces between unescaped ``*`` (``\\*`` is a literal star, ``\\\\`` a backslash)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            cur.append(pattern[i + 1])
            i += 2
            continue
        if ch == "*":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return tuple(parts)


def glob_match(value: str, pattern: str) -> bool:
    """StringMatches: ``*`` matches any run of characters; no regex, so no backtracking.

    The first piece must be a prefix, the last a suffix, and each middle piece is found leftmost
    after the previous one: with only ``*`` the leftmost choice is always safe, so one pass
    (``str.find``) decides, whatever the pattern (``*a*a*a*b`` included).
    """
    parts = _glob_parts(pattern)
    if len(parts) == 1:
        return value == parts[0]
    first, last = parts[0], parts[-1]
    if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
        return False
    pos, end = len(first), len(value) - len(last)
    for piece in parts[1:-1]:
        found = value.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _matches(value: Any, pattern: Any) -> bool:
    return isinstance(value, str) and isinstance(pattern, str) and glob_match(value, pattern)


_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": _string_cmp(_eq),
    "StringLessThan": _string_cmp(_lt),
    "StringGreaterThan": _string_cmp(_gt),
    "StringLessThanEquals": _string_cmp(_le),
    "StringGreaterThanEquals": _string_cmp(_ge),
    "StringMatches": _matches,
    "NumericEquals": _numeric_cmp(_eq),
    "NumericLessThan": _numeric_cmp(_lt),
    "NumericGreaterThan": _numeric_cmp(_gt),
    "NumericLessThanEquals": _numeric_cmp(_le),
    "NumericGreaterThanEquals": _numeric_cmp(_ge),
    "BooleanEquals": lambda a, b: isinstance(a, bool) and isinstance(b, bool) and a == b,
    "TimestampEquals": _ts_cmp(_eq),
    "TimestampLessThan": _ts_cmp(_lt),
    "TimestampGreaterThan": _ts_cmp(_gt),
    "TimestampLessThanEquals": _ts_cmp(_le),
    "TimestampGreaterThanEquals": _ts_cmp(_ge),
}
_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}
_LITERAL_TYPES: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "Numeric": _is_number,
    "Boolean": lambda v: isinstance(v, bool),
    "Timestamp": lambda v: isinstance(v, str),
}
OPERATORS: frozenset[str] = frozenset(
    [*_BINARY, *(k + "Path" for k in _BINARY if k != "StringMatches"), *_TYPE_TESTS, "IsPresent"]
)


def _get(lookup: Lookup, path: JsonPath) -> Any:
    try:
        return lookup(path)
    except PathError as exc:
        raise StatesError("States.Runtime", f"Invalid path '{path.text}': {exc}") from exc


def compile_rule(rule: Mapping[str, Any], where: str) -> Rule:
    """Compile one Choice rule (top-level or nested); DefinitionError names ``where`` on a bad rule."""
    if not isinstance(rule, Mapping):
        raise DefinitionError(f"{where}: a choice rule must be an object")
    for combinator in ("And", "Or"):
        if combinator in rule:
            subs = rule[combinator]
            if not isinstance(subs, list) or not subs:
                raise DefinitionError(f"{where}.{combinator}: must be a non-empty array of rules")
            compiled = [compile_rule(r, f"{where}.{combinator}[{i}]") for i, r in enumerate(subs)]
            if combinator == "And":
                return lambda lookup: all(r(lookup) for r in compiled)
            return lambda lookup: any(r(lookup) for r in compiled)
    if "Not" in rule:
        inner = compile_rule(rule["Not"], f"{where}.Not")
        return lambda lookup: not inner(lookup)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise DefinitionError(f"{where}: field 'Variable' is required and must be a path")
    try:
        var = compile_path(variable)
    except PathError as exc:
        raise DefinitionError(f"{where}.Variable: {exc}") from exc
    ops = [k for k in rule if k in OPERATORS]
    if len(ops) != 1:
        raise DefinitionError(f"{where}: exactly one comparison operator is required, found {ops or 'none'}")
    op = ops[0]
    operand = rule[op]
    if op == "IsPresent":
        want = _want_bool(operand, where, op)
        return lambda lookup: _present(lookup, var) == want
    if op in _TYPE_TESTS:
        want = _want_bool(operand, where, op)
        test = _TYPE_TESTS[op]
        return lambda lookup: _present(lookup, var) and test(lookup(var)) == want
    if op.endswith("Path"):
        base = op[:-4]
        try:
            other = compile_path(operand)
        except (PathError, TypeError) as exc:
            raise DefinitionError(f"{where}.{op}: {exc}") from exc
        fn = _BINARY[base]
        return lambda lookup: fn(_get(lookup, var), _get(lookup, other))
    kind = next(k for k in _LITERAL_TYPES if op.startswith(k))
    if not _LITERAL_TYPES[kind](operand):
        raise DefinitionError(f"{where}.{op}: expected a {kind.lower()} value, got {operand!r}")
    fn = _BINARY[op]
    return lambda lookup: fn(_get(lookup, var), operand)


def _want_bool(v: Any, where: str, op: str) -> bool:
    if not isinstance(v, bool):
        raise DefinitionError(f"{where}.{op}: must be true or false")
    return v


def _present(lookup: Lookup, path: JsonPath) -> bool:
    try:
        lookup(path)
    except PathError:
        return False
    return True
