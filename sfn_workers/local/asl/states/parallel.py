"""Parallel: every branch on its own thread, with the state's input; the result is their outputs in order."""

from __future__ import annotations

from typing import Any

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..specs import ParallelSpec
from .fanout import fan_out


def run_parallel(engine: Engine, run: StateRun, spec: ParallelSpec, raw: Any) -> tuple[str | None, Any]:
    history = engine.history

    def attempt() -> Any:
        args = spec.query.arguments(run, spec.flow, raw)
        run.prev = history.add("ParallelStateStarted", run.prev)
        jobs = [(b, args, None) for b in spec.branches]
        try:
            outs = fan_out(engine, run, jobs, len(jobs), None)
        except StatesError:
            run.prev = history.add("ParallelStateFailed", len(history.events), {})
            raise
        run.prev = history.add("ParallelStateSucceeded", len(history.events))
        return outs

    result = engine.with_retry(run, attempt)
    return spec.next, spec.query.finish(run, spec.flow, raw, result)
