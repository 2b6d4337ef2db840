"""The States.* intrinsic functions, parsed once and evaluated against the state's data.

Arguments are literals ('string', numbers, true/false/null), paths ($..., $$..., $var...) or nested
intrinsic calls. A wrong argument count, type or value raises ``States.IntrinsicFailure``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..._limits import ARRAY_RANGE_MAX_ITEMS, INTRINSIC_TEXT_MAX_CHARS
from .errors import StatesError
from .paths import JsonPath, PathError, compile_path

__all__ = ["Intrinsic", "IntrinsicError", "compile_intrinsic", "is_intrinsic"]

Resolver = Callable[[JsonPath], Any]


class IntrinsicError(StatesError):
    """An intrinsic function failed (bad argument type, count or value)."""

    def __init__(self, cause: str) -> None:
        super().__init__("States.IntrinsicFailure", cause)


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[Any, ...]  # literal | JsonPath | _Call


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """A compiled intrinsic expression; ``evaluate(resolve)`` looks paths up through ``resolve``."""

    text: str
    call: _Call

    def evaluate(self, resolve: Resolver) -> Any:
        return _eval(self.call, resolve)


def is_intrinsic(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("States.")


def _eval(node: Any, resolve: Resolver) -> Any:
    if isinstance(node, _Call):
        fn = _FUNCTIONS.get(node.name)
        if fn is None:
            raise IntrinsicError(f"Unknown intrinsic function {node.name}")
        return fn([_eval(a, resolve) for a in node.args])
    if isinstance(node, JsonPath):
        return resolve(node)
    return node


# -- parser ---------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.$])
      | (?P<func>States\.[A-Za-z0-9]+)\s*\(
      | (?P<lit>true|false|null)(?![\w.$])
      | (?P<path>\$(?:[^,()'\s]|'(?:[^'\\]|\\.)*'|\((?:[^()]|\([^()]*\))*\))*)
      | (?P<comma>,)
      | (?P<close>\))
    )""",
    re.X,
)


@lru_cache(maxsize=2048)
def compile_intrinsic(text: str) -> Intrinsic:
    """Parse ``States.Fn(args)``; raises ValueError with the reason if it does not parse."""
    pos, node = _parse_call(text, 0)
    if text[pos:].strip():
        raise ValueError(f"unexpected text after the intrinsic function: '{text[pos:]}'")
    return Intrinsic(text, node)


def _parse_call(text: str, pos: int) -> tuple[int, _Call]:
    m = _TOKEN.match(text, pos)
    if not m or not m.group("func"):
        raise ValueError(f"'{text}' is not an intrinsic function call")
    name = m.group("func")
    pos = m.end()
    args: list[Any] = []
    expect_arg = True
    while True:
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse '{text[pos:]}' in '{text}'")
        if m.group("close"):
            if args and expect_arg:
                raise ValueError(f"missing argument in '{text}'")
            return m.end(), _Call(name, tuple(args))
        if m.group("comma"):
            if expect_arg:
                raise ValueError(f"missing argument in '{text}'")
            expect_arg = True
            pos = m.end()
            continue
        if not expect_arg:
            raise ValueError(f"missing ',' in '{text}'")
        if m.group("func"):
            pos, sub = _parse_call(text, m.start("func"))
            args.append(sub)
        else:
            args.append(_literal(m))
            pos = m.end()
        expect_arg = False


def _literal(m: re.Match[str]) -> Any:
    if m.group("str") is not None:
        return _unescape(m.group("str")[1:-1])
    if m.group("num") is not None:
        t = m.group("num")
        return float(t) if any(c in t for c in ".eE") else int(t)
    if m.group("lit") is not None:
        return {"true": True, "false": False, "null": None}[m.group("lit")]
    try:
        return compile_path(m.group("path").rstrip())
    except PathError as exc:
        raise ValueError(str(exc)) from exc


def _unescape(s: str) -> str:
    # Intrinsic string literals escape ' { } and \ with a backslash; keep "\{" for Format to see.
    out = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            out.append("\\" + nxt if nxt in "{}" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# -- functions ------------------------------------------------------------------------------------
def _arity(name: str, args: Sequence[Any], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise IntrinsicError(f"{name} expects {want} arguments, got {len(args)}")


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _want(name: str, v: Any, kind: str) -> Any:
    ok = {
        "string": isinstance(v, str),
        "array": isinstance(v, list),
        "object": isinstance(v, dict),
        "integer": _is_int(v),
        "number": isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": isinstance(v, bool),
    }[kind]
    if not ok:
        raise IntrinsicError(f"{name}: expected a {kind} argument, got {json.dumps(v)}")
    return int(v) if kind == "integer" else v


def _to_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _format_value(v: Any) -> str:
    """How AWS renders a States.Format argument (Java's toString: ``{a=1, b=[x, y]}``)."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    return json.dumps(v)


def _format(args: list[Any]) -> str:
    if not args:
        raise IntrinsicError("States.Format expects at least 1 argument")
    template = _want("States.Format", args[0], "string")
    values = args[1:]
    out: list[str] = []
    k = 0
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "{}\\'":
            out.append(template[i + 1])
            i += 2
            continue
        if template.startswith("{}", i):
            if k >= len(values):
                raise IntrinsicError("States.Format: more placeholders than arguments")
            out.append(_format_value(values[k]))
            k += 1
            i += 2
            continue
        out.append(ch)
        i += 1
    if k != len(values):
        raise IntrinsicError("States.Format: the number of arguments does not match the placeholders")
    return "".join(out)


def _string_to_json(args: list[Any]) -> Any:
    _arity("States.StringToJson", args, 1)
    s = _want("States.StringToJson", args[0], "string")
    try:
        return json.loads(s) if s.strip() else None
    except ValueError as exc:
        raise IntrinsicError(f"States.StringToJson: invalid JSON {s!r}") from exc


def _json_to_string(args: list[Any]) -> str:
    _arity("States.JsonToString", args, 1)
    return json.dumps(args[0], separators=(",", ":"), ensure_ascii=False)


def _array_partition(args: list[Any]) -> list[Any]:
    _arity("States.ArrayPartition", args, 2)
    arr = _want("States.ArrayPartition", args[0], "array")
    size = _want("States.ArrayPartition", args[1], "integer")
    if size <= 0:
        raise IntrinsicError("States.ArrayPartition: the chunk size must be greater than 0")
    return [arr[i : i + size] for i in range(0, len(arr), size)]


def _array_contains(args: list[Any]) -> bool:
    _arity("States.ArrayContains", args, 2)
    arr = _want("States.ArrayContains", args[0], "array")
    return any(_json_eq(x, args[1]) for x in arr)


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _array_range(args: list[Any]) -> list[int]:
    _arity("States.ArrayRange", args, 3)
    start, end, step = (_want("States.ArrayRange", a, "integer") for a in args)
    if step == 0:
        raise IntrinsicError("States.ArrayRange: the step must not be 0")
    items = range(start, end + (1 if step > 0 else -1), step)  # lazy: counted before any list is built
    if len(items) > ARRAY_RANGE_MAX_ITEMS:
        raise IntrinsicError(f"States.ArrayRange: the result would have more than {ARRAY_RANGE_MAX_ITEMS} items")
    return list(items)


def _array_get_item(args: list[Any]) -> Any:
    _arity("States.ArrayGetItem", args, 2)
    arr = _want("States.ArrayGetItem", args[0], "array")
    idx = _want("States.ArrayGetItem", args[1], "integer")
    if not 0 <= idx < len(arr):
        raise IntrinsicError(f"States.ArrayGetItem: index {idx} out of bounds")
    return arr[idx]


def _array_length(args: list[Any]) -> int:
    _arity("States.ArrayLength", args, 1)
    return len(_want("States.ArrayLength", args[0], "array"))


def _array_unique(args: list[Any]) -> list[Any]:
    _arity("States.ArrayUnique", args, 1)
    out: list[Any] = []
    seen: set[str] = set()
    for x in _want("States.ArrayUnique", args[0], "array"):
        key = json.dumps(x, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


def _b64encode(args: list[Any]) -> str:
    _arity("States.Base64Encode", args, 1)
    s = _want("States.Base64Encode", args[0], "string")
    if len(s) > INTRINSIC_TEXT_MAX_CHARS:
        raise IntrinsicError(f"States.Base64Encode: input longer than {INTRINSIC_TEXT_MAX_CHARS} characters")
    return base64.b64encode(s.encode()).decode()


def _b64decode(args: list[Any]) -> str:
    _arity("States.Base64Decode", args, 1)
    s = _want("States.Base64Decode", args[0], "string")
    if len(s) > INTRINSIC_TEXT_MAX_CHARS:
        raise IntrinsicError(f"States.Base64Decode: input longer than {INTRINSIC_TEXT_MAX_CHARS} characters")
    try:
        return base64.b64decode(s, validate=True).decode()
    except ValueError as exc:
        raise IntrinsicError(f"States.Base64Decode: invalid base64 {s!r}") from exc


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any]) -> str:
    _arity("States.Hash", args, 2)
    data, algo = args
    if data is None:
        raise IntrinsicError("States.Hash: the data to hash must not be null")
    algo = _want("States.Hash", algo, "string")
    if algo not in _HASHES:
        raise IntrinsicError(f"States.Hash: unsupported algorithm {algo!r}; use one of {', '.join(_HASHES)}")
    text = _to_text(data)
    if len(text) > INTRINSIC_TEXT_MAX_CHARS:
        raise IntrinsicError(f"States.Hash: input longer than {INTRINSIC_TEXT_MAX_CHARS} characters")
    return hashlib.new(_HASHES[algo], text.encode(), usedforsecurity=False).hexdigest()


def _json_merge(args: list[Any]) -> dict[str, Any]:
    _arity("States.JsonMerge", args, 3)
    a = _want("States.JsonMerge", args[0], "object")
    b = _want("States.JsonMerge", args[1], "object")
    deep = _want("States.JsonMerge", args[2], "boolean")
    if deep:
        raise IntrinsicError("States.JsonMerge: only shallow merging (false) is supported")
    return {**a, **b}


def _math_random(args: list[Any]) -> int:
    _arity("States.MathRandom", args, 2, 3)
    lo = _want("States.MathRandom", args[0], "integer")
    hi = _want("States.MathRandom", args[1], "integer")
    rng = random.Random(_want("States.MathRandom", args[2], "integer")) if len(args) == 3 else random
    if hi <= lo:
        raise IntrinsicError("States.MathRandom: the end must be greater than the start")
    return rng.randrange(lo, hi)


def _math_add(args: list[Any]) -> int:
    _arity("States.MathAdd", args, 2)
    a = _want("States.MathAdd", args[0], "number")
    b = _want("States.MathAdd", args[1], "number")
    return _java_round(a) + _java_round(b)


def _java_round(v: float) -> int:
    """AWS rounds each MathAdd operand like Java's Math.round (half up)."""
    return int(v) if isinstance(v, int) else math.floor(v + 0.5)


def _string_split(args: list[Any]) -> list[str]:
    _arity("States.StringSplit", args, 2)
    s = _want("States.StringSplit", args[0], "string")
    delims = _want("States.StringSplit", args[1], "string")
    if not delims:
        return [s]
    parts = re.split("[" + re.escape(delims) + "]", s)
    return [p for p in parts if p]


def _uuid(args: list[Any]) -> str:
    _arity("States.UUID", args, 0)
    return str(uuid.uuid4())


_FUNCTIONS: dict[str, Callable[[list[Any]], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": lambda args: list(args),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _b64encode,
    "States.Base64Decode": _b64decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}
