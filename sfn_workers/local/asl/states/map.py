"""Map (inline): the item processor once per item, up to MaxConcurrency at a time (40 when 0, as AWS).

``map_number`` reads MaxConcurrency and the tolerated failures for both Map kinds.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..query import dumps
from ..specs import MapSpec
from .fanout import Tolerance, fan_out

__all__ = ["map_number", "run_map", "tolerance"]

_INLINE_MAP_CONCURRENCY = 40


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _txt(v: Any) -> str:
    return v if isinstance(v, str) else dumps(v)


def _from_path(name: str, v: Any, path: str) -> Any:
    """A value read through a *Path field: numbers written as strings are accepted, as AWS does."""
    percentage = name == "ToleratedFailurePercentage"
    if isinstance(v, str):
        with contextlib.suppress(ValueError):
            v = float(v) if percentage else int(v)
    if percentage and not _is_number(v):
        raise StatesError(
            "States.Runtime", f'The {name}Path field refers to value "{_txt(v)}" which is not a valid number: {path}'
        )
    if not percentage and (isinstance(v, bool) or not isinstance(v, int)):
        raise StatesError(
            "States.Runtime", f'The {name}Path field refers to value "{_txt(v)}" which is not a valid integer: {path}'
        )
    return v


def map_number(run: StateRun, spec: MapSpec, raw: Any, name: str, default: Any) -> Any:
    """MaxConcurrency, ToleratedFailureCount or ToleratedFailurePercentage (literal, expression or *Path)."""
    fld, path = {
        "MaxConcurrency": (spec.max_concurrency, spec.max_concurrency_path),
        "ToleratedFailureCount": (spec.tolerated_count, spec.tolerated_count_path),
        "ToleratedFailurePercentage": (spec.tolerated_percentage, spec.tolerated_percentage_path),
    }[name]
    found = spec.query.read(run, raw, raw, fld, path)
    if found is None:
        return default
    v = found.value
    if found.path is not None:
        v = _from_path(name, v, found.path)
    elif spec.jsonata and not _is_number(v):
        raise StatesError("States.QueryEvaluationError", f"The {name} field must be a number, not {_txt(v)}")
    if _is_number(v) and v < 0:
        raise StatesError("States.Runtime", f"{name} cannot be negative.")
    if name == "ToleratedFailurePercentage" and v > 100:
        raise StatesError("States.Runtime", f"{name} cannot be greater than 100.")
    return v


def tolerance(run: StateRun, spec: MapSpec, raw: Any) -> Tolerance | None:
    count = map_number(run, spec, raw, "ToleratedFailureCount", None)
    pct = map_number(run, spec, raw, "ToleratedFailurePercentage", None)
    return None if count is None and pct is None else Tolerance(count, pct)


def run_map(engine: Engine, run: StateRun, spec: MapSpec, raw: Any) -> tuple[str | None, Any]:
    result = engine.with_retry(run, lambda: _attempt(engine, run, spec, raw))
    return spec.next, spec.query.finish(run, spec.flow, raw, result)


def _attempt(engine: Engine, run: StateRun, spec: MapSpec, raw: Any) -> Any:
    q, history = spec.query, engine.history
    items, doc = q.items(run, spec.flow, raw, spec.items, spec.items_path)
    max_c = map_number(run, spec, raw, "MaxConcurrency", 0)
    tol = tolerance(run, spec, raw)
    run.prev = history.add("MapStateStarted", run.prev, {"length": len(items)})
    selector = spec.item_selector

    def item_input(index: int, value: Any) -> Any:
        return value if selector is None else q.evaluate(run.for_item(index, value), selector, raw, doc)

    jobs = [(spec.processor, item, i) for i, item in enumerate(items)]
    workers = min(len(items), max_c if max_c else _INLINE_MAP_CONCURRENCY)
    try:
        outs = fan_out(engine, run, jobs, max(workers, 1), item_input, tol)
    except StatesError:
        run.prev = history.add("MapStateFailed", len(history.events))
        raise
    run.prev = history.add("MapStateSucceeded", len(history.events))
    return outs
