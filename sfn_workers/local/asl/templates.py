"""Payload templates (Parameters, ResultSelector, ItemSelector, Assign) and JSONata expressions.

A template is compiled once into a closure; constant sub-trees are shared, never copied (values
are treated as immutable throughout the interpreter). JSONPath templates evaluate ``key.$`` values
as paths or intrinsic functions; JSONata templates evaluate ``{% ... %}`` strings at any depth.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .errors import StatesError
from .intrinsics import compile_intrinsic, is_intrinsic
from .jsonata_bounded import evaluate_with_budget, regex_engine, safe_functions
from .paths import JsonPath, PathError, compile_path

__all__ = [
    "UNDEFINED",
    "Resolver",
    "clock_functions",
    "compile_jsonata_template",
    "compile_template",
    "evaluate_jsonata",
    "is_jsonata",
    "jsonata_bindings",
]

Resolver = Callable[[JsonPath], Any]
Template = Callable[[Resolver], Any]
_CONST = object()


def _path_eval(path: JsonPath, field: str) -> Template:
    def ev(resolve: Resolver) -> Any:
        try:
            return resolve(path)
        except PathError as exc:
            raise StatesError(
                "States.Runtime",
                f"The JSONPath '{path.text}' specified for the field '{field}' could not be found in the input",
            ) from exc

    return ev


def _compile(value: Any, field: str) -> Any:
    """A Template, or _CONST when ``value`` has nothing to evaluate."""
    if isinstance(value, Mapping):
        parts: list[tuple[str, Any, bool]] = []
        dynamic = False
        for k, v in value.items():
            if isinstance(k, str) and k.endswith(".$") and isinstance(v, str):
                key = k[:-2]
                if is_intrinsic(v):
                    parts.append((key, compile_intrinsic(v).evaluate, True))
                else:
                    parts.append((key, _path_eval(compile_path(v), k), True))
                dynamic = True
            else:
                sub = _compile(v, k)
                if sub is _CONST:
                    parts.append((k, v, False))
                else:
                    parts.append((k, sub, True))
                    dynamic = True
        if not dynamic:
            return _CONST
        return lambda resolve: {k: (f(resolve) if d else f) for k, f, d in parts}
    if isinstance(value, list):
        subs = [_compile(v, field) for v in value]
        if all(s is _CONST for s in subs):
            return _CONST
        items = list(zip(subs, value, strict=True))
        return lambda resolve: [v if s is _CONST else s(resolve) for s, v in items]
    return _CONST


def compile_template(value: Any) -> Template:
    """Compile a JSONPath payload template (``"key.$": path-or-intrinsic``)."""
    t = _compile(value, "")
    if t is _CONST:
        return lambda resolve: value
    return t  # type: ignore[no-any-return]


# -- JSONata --------------------------------------------------------------------------------------
def is_jsonata(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}") and len(value) >= 4


_local = threading.local()


@lru_cache(maxsize=2048)
def _parse_jsonata(expr: str) -> Any:
    import jsonata

    compiled = jsonata.Jsonata(expr, regex_engine)
    compiled.set_output_convert_nulls(False)
    for name, fn in _AWS_FUNCTIONS.items():
        compiled.register_lambda(name, fn)
    for name, function in safe_functions().items():
        compiled.register_function(name, function)
    return compiled


def jsonata_syntax_error(expr: str) -> str | None:
    """Why ``expr`` does not parse as JSONata, or None when it does."""
    try:
        _parse_jsonata(expr)
    except Exception as exc:  # the library raises its own exception types
        code = getattr(exc, "error", None)
        return f"{code}: {exc}" if isinstance(code, str) and not str(exc).startswith(code) else str(exc)
    return None


def _aws_partition(array: Any, size: Any) -> Any:
    from .intrinsics import _array_partition

    return _array_partition([_plain(array), _plain(size)])


def _aws_range(start: Any, end: Any, step: Any) -> Any:
    from .intrinsics import _array_range

    out = _array_range([_plain(start), _plain(end), _plain(step)])
    # AWS's $range yields a JSONata sequence: a single value is not wrapped in an array (as recorded).
    return out[0] if len(out) == 1 else out


def _aws_hash(data: Any, algorithm: Any) -> Any:
    from .intrinsics import _hash

    return _hash([_plain(data), algorithm])


def _aws_random(seed: Any = None) -> float:
    import random

    return random.Random(seed).random() if seed is not None else random.random()


def _aws_uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _aws_parse(text: Any) -> Any:
    return _to_jsonata(json.loads(text), _null())


# The functions AWS adds to JSONata in Step Functions.
_AWS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _aws_partition,
    "range": _aws_range,
    "hash": _aws_hash,
    "random": _aws_random,
    "uuid": _aws_uuid,
    "parse": _aws_parse,
}


def evaluate_jsonata(text: str, bindings: Mapping[str, Any], field: str) -> Any:
    """Evaluate a ``{% expr %}`` string with ``bindings`` (``states`` and the variables in scope).

    Raises ``States.QueryEvaluationError`` when the expression fails, and returns ``_UNDEFINED``
    (see :data:`UNDEFINED`) when it yields nothing.
    """
    expr = text[2:-2].strip()
    try:
        compiled = _parse_jsonata(expr)
    except Exception as exc:  # the library raises its own exception types
        raise StatesError("States.QueryEvaluationError", f"The JSONata expression '{expr}' is invalid: {exc}") from exc
    describe = f"The JSONata expression '{expr}' specified for the field '{field}'"
    result = evaluate_with_budget(compiled, bindings, describe)
    return UNDEFINED if result is None else _plain(result)


def clock_functions(millis: int) -> dict[str, Any]:
    """``$now()`` and ``$millis()`` reading the execution's clock (virtual time when it is virtual)."""
    from jsonata.functions import Functions
    from jsonata.jsonata import Jsonata

    def now(picture: Any = None, timezone: Any = None) -> Any:
        return Functions.datetime_from_millis(millis, picture, timezone)

    return {"now": Jsonata.JLambda(now), "millis": Jsonata.JLambda(lambda: millis)}


def _null() -> Any:
    from jsonata.utils import Utils

    return Utils.NULL_VALUE


def jsonata_bindings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Variables for an evaluation, with JSON ``null`` made the library's null (Python None means undefined)."""
    null = _null()
    return {k: _to_jsonata(v, null) for k, v in values.items()}


def _to_jsonata(v: Any, null: Any) -> Any:
    if v is None:
        return null
    if isinstance(v, dict):
        out = None
        for k, x in v.items():
            y = _to_jsonata(x, null)
            if y is not x:
                if out is None:
                    out = dict(v)
                out[k] = y
        return v if out is None else out
    if isinstance(v, list):
        out_l = None
        for i, x in enumerate(v):
            y = _to_jsonata(x, null)
            if y is not x:
                if out_l is None:
                    out_l = list(v)
                out_l[i] = y
        return v if out_l is None else out_l
    return v


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


def _plain(v: Any) -> Any:
    """jsonata-python returns its own sequence/null/number types; turn them into plain JSON values."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if v is _null():
        return None
    if isinstance(v, float):
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, int):
        return v
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v if x is not None]
    if callable(v):
        return {}
    return json.loads(json.dumps(v, default=str))


JsonataTemplate = Callable[[Mapping[str, Any]], Any]


def compile_jsonata_template(value: Any, field: str) -> JsonataTemplate:
    """A JSONata-language field (Arguments, Output, Assign values, ...): ``{% %}`` strings at any depth."""
    if is_jsonata(value):
        text = value

        def ev(bindings: Mapping[str, Any]) -> Any:
            out = evaluate_jsonata(text, bindings, field)
            if out is UNDEFINED:
                raise StatesError(
                    "States.QueryEvaluationError",
                    f"The JSONata expression '{text[2:-2].strip()}' specified for the field '{field}' "
                    "returned nothing (undefined).",
                )
            return out

        return ev
    if isinstance(value, Mapping):
        parts = [(k, compile_jsonata_template(v, f"{field}/{k}" if field else k)) for k, v in value.items()]
        return lambda b: {k: f(b) for k, f in parts}
    if isinstance(value, list):
        subs = [compile_jsonata_template(v, field) for v in value]
        return lambda b: [f(b) for f in subs]
    return lambda b: value
