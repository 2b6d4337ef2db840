"""The JSONPath subset of the States Language: paths, reference paths, ``$$`` and ``$var`` roots.

A path is compiled once (cached) into a list of steps. ``definite`` paths (names and indexes only)
select one value; the others (``[*]``, slices, ``..``, filters, unions) select a list, as AWS does.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["JsonPath", "PathError", "compile_path", "is_path", "set_reference_path"]


class PathError(ValueError):
    """A path that does not parse, or that selects nothing in the given document."""


_MISSING = object()

_NAME_RE = re.compile(r"[^.\[\]()\s]+")
_FILTER_RE = re.compile(r"\?\(\s*@((?:\.[^\s=!<>\]()]+|\['[^']*'\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)\s*$", re.S)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # name | index | wildcard | slice | union | recurse | deep (a bracket at every depth) | filter
    arg: Any = None


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled path. ``root`` is ``$``, ``$$`` (context object) or ``$name`` (a variable)."""

    text: str
    root: str
    steps: tuple[_Step, ...]
    definite: bool

    @property
    def is_reference(self) -> bool:
        return all(s.kind in ("name", "index") for s in self.steps)

    def get(self, doc: Any) -> Any:
        """The value this path selects in ``doc``; PathError if a definite path finds nothing."""
        if self.definite:
            cur = doc
            for k, step in enumerate(self.steps):
                cur = _child(cur, step)
                if cur is _MISSING:
                    raise PathError(self._missing_message(k))
            return cur
        values = [doc]
        for step in self.steps:
            values = _apply(values, step)
        return values

    def _missing_message(self, k: int) -> str:
        """Jayway JsonPath's wording, which AWS shows in States.Runtime causes."""
        if k == len(self.steps) - 1:
            return f"No results for path: {_normalized(self.steps)}"
        return f"Missing property in path {_normalized(self.steps[: k + 1])}"

    def exists(self, doc: Any) -> bool:
        if not self.definite:
            return True
        try:
            self.get(doc)
        except PathError:
            return False
        return True


def _normalized(steps: tuple[_Step, ...]) -> str:
    return "$" + "".join(f"['{s.arg}']" if s.kind == "name" else f"[{s.arg}]" for s in steps)


def _child(cur: Any, step: _Step) -> Any:
    if step.kind == "name":
        if isinstance(cur, Mapping):
            return cur.get(step.arg, _MISSING)
        return _MISSING
    if isinstance(cur, list):
        i = step.arg
        if -len(cur) <= i < len(cur):
            return cur[i]
    return _MISSING


def _apply(values: list[Any], step: _Step) -> list[Any]:
    out: list[Any] = []
    kind = step.kind
    for v in values:
        if kind in ("name", "index"):
            c = _child(v, step)
            if c is not _MISSING:
                out.append(c)
        elif kind == "wildcard":
            if isinstance(v, list):
                out.extend(v)
            elif isinstance(v, Mapping):
                out.extend(v.values())
        elif kind == "slice":
            if isinstance(v, list):
                out.extend(v[slice(*step.arg)])
        elif kind == "union":
            for sub in step.arg:
                c = _child(v, sub)
                if c is not _MISSING:
                    out.append(c)
        elif kind == "recurse":
            _descend(v, step.arg, out)
        elif kind == "deep":
            nodes = [v]
            _descend(v, None, nodes)
            out.extend(_apply([x for x in nodes if isinstance(x, list | Mapping)], step.arg))
        elif kind == "filter":
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, Mapping) else []
            out.extend(x for x in items if step.arg(x))
    return out


def _descend(v: Any, name: str | None, out: list[Any]) -> None:
    if isinstance(v, Mapping):
        if name is None:
            out.extend(v.values())
        elif name in v:
            out.append(v[name])
        for c in v.values():
            _descend(c, name, out)
    elif isinstance(v, list):
        if name is None:
            out.extend(v)
        for c in v:
            _descend(c, name, out)


def is_path(text: Any) -> bool:
    """Whether a string is written as a path (starts with ``$``)."""
    return isinstance(text, str) and text.startswith("$")


@lru_cache(maxsize=4096)
def compile_path(text: str) -> JsonPath:
    """Parse a path once; raises PathError naming what is wrong."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(f"'{text}' is not a valid JSONPath (it must start with '$')")
    i = 1
    if text.startswith("$$"):
        root, i = "$$", 2
    else:
        m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text)
        if m:
            root, i = m.group(0), m.end()
        else:
            root = "$"
    steps: list[_Step] = []
    n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("..", i):
            i += 2
            if i < n and text[i] == "[":  # "$..[0]", "$..['k']": the bracket applied at every depth
                end = _bracket_end(text, i)
                steps.append(_Step("deep", _bracket(text, text[i + 1 : end].strip())))
                i = end + 1
                continue
            if i < n and text[i] == "*":
                steps.append(_Step("recurse", None))
                i += 1
                continue
            m = _NAME_RE.match(text, i)
            if not m:
                raise PathError(f"'{text}' is not a valid JSONPath")
            steps.append(_Step("recurse", m.group(0)))
            i = m.end()
        elif c == ".":
            i += 1
            if i < n and text[i] == "[":  # Jayway reads "$.[0]" and "$.['key']" as "$[0]" and "$['key']"
                continue
            if i < n and text[i] == "*":
                steps.append(_Step("wildcard"))
                i += 1
                continue
            m = _NAME_RE.match(text, i)
            if not m:
                raise PathError(f"'{text}' is not a valid JSONPath")
            name = m.group(0)
            i = m.end()
            if name == "length" and text.startswith("()", i):
                raise PathError(f"'{text}': length() is not supported")
            steps.append(_Step("name", name))
        elif c == "[":
            end = _bracket_end(text, i)
            steps.append(_bracket(text, text[i + 1 : end].strip()))
            i = end + 1
        else:
            raise PathError(f"'{text}' is not a valid JSONPath")
    definite = all(s.kind in ("name", "index") for s in steps)
    return JsonPath(text, root, tuple(steps), definite)


def _bracket_end(text: str, start: int) -> int:
    depth = 0
    quote: str | None = None
    j = start
    while j < len(text):
        ch = text[j]
        if quote:
            if ch == "\\":
                j += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0 and ch == "]":
                return j
        j += 1
    raise PathError(f"'{text}' is not a valid JSONPath (unclosed '[')")


def _bracket(text: str, inner: str) -> _Step:
    if inner == "*":
        return _Step("wildcard")
    if inner.startswith("?"):
        return _Step("filter", _compile_filter(text, inner))
    if inner[:1] in "'\"":
        parts = _split_union(inner)
        names = [_unquote(p, text) for p in parts]
        if len(names) == 1:
            return _Step("name", names[0])
        return _Step("union", tuple(_Step("name", nm) for nm in names))
    if ":" in inner:
        try:
            bounds = [int(p) if p.strip() else None for p in inner.split(":")]
        except ValueError as exc:
            raise PathError(f"'{text}' is not a valid JSONPath") from exc
        if len(bounds) > 3:
            raise PathError(f"'{text}' is not a valid JSONPath")
        return _Step("slice", tuple(bounds))
    try:
        idx = [int(p) for p in inner.split(",")]
    except ValueError as exc:
        raise PathError(f"'{text}' is not a valid JSONPath") from exc
    if len(idx) == 1:
        return _Step("index", idx[0])
    return _Step("union", tuple(_Step("index", k) for k in idx))


def _split_union(inner: str) -> list[str]:
    parts, cur, quote = [], "", None
    k = 0
    while k < len(inner):
        ch = inner[k]
        if quote:
            cur += ch
            if ch == "\\" and k + 1 < len(inner):
                cur += inner[k + 1]
                k += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
        k += 1
    parts.append(cur.strip())
    return parts


def _unquote(part: str, text: str) -> str:
    if len(part) < 2 or part[0] != part[-1] or part[0] not in "'\"":
        raise PathError(f"'{text}' is not a valid JSONPath")
    body = part[1:-1]
    return body.replace("\\" + part[0], part[0])


def _compile_filter(text: str, inner: str) -> Callable[[Any], bool]:
    m = _FILTER_RE.match(inner)
    if not m:
        raise PathError(f"'{text}': unsupported filter expression '{inner}'")
    sub = compile_path("$" + m.group(1)) if m.group(1) else compile_path("$")
    op = m.group(2)
    if op is None:
        return sub.exists
    lit = _literal(m.group(3).strip(), text)
    fn = _OPS[op]

    def pred(item: Any) -> bool:
        try:
            v = sub.get(item)
        except PathError:
            return False
        if op not in ("==", "!=") and (
            isinstance(v, bool) or isinstance(lit, bool) or (type(v) is not type(lit) and not _both_numbers(v, lit))
        ):
            return False
        try:
            return bool(fn(v, lit))
        except TypeError:
            return False

    return pred


def _both_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float)


def _literal(tok: str, text: str) -> Any:
    import json

    if tok[:1] == "'" and tok[-1:] == "'":
        return tok[1:-1]
    try:
        return json.loads(tok)
    except ValueError as exc:
        raise PathError(f"'{text}': unsupported filter literal {tok}") from exc


def set_reference_path(doc: Any, path: JsonPath, value: Any) -> Any:
    """A copy of ``doc`` with ``value`` at ``path`` (ResultPath); only the spine is copied.

    Missing objects on the way are created; a non-object on the way raises PathError.
    """
    if not path.is_reference:
        raise PathError(f"'{path.text}' is not a reference path")
    if not path.steps:
        return value
    return _set(doc, path.steps, 0, value, path.text)


def _set(cur: Any, steps: tuple[_Step, ...], k: int, value: Any, text: str) -> Any:
    step = steps[k]
    last = k == len(steps) - 1
    if step.kind == "name":
        if cur is None or cur is _MISSING:
            cur = {}
        if not isinstance(cur, Mapping):
            raise PathError(f"Unable to apply ResultPath '{text}' to input of type {type(cur).__name__}")
        new = dict(cur)
        new[step.arg] = value if last else _set(cur.get(step.arg, _MISSING), steps, k + 1, value, text)
        return new
    if not isinstance(cur, list) or not -len(cur) <= step.arg < len(cur):
        raise PathError(f"Unable to apply ResultPath '{text}': index {step.arg} does not exist")
    lst = list(cur)
    lst[step.arg] = value if last else _set(cur[step.arg], steps, k + 1, value, text)
    return lst
