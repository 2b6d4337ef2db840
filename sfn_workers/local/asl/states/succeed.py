"""Succeed: ends its machine with its input (after InputPath/OutputPath, or Output)."""

from __future__ import annotations

from typing import Any

from ..frame import Engine, StateRun
from ..specs import SucceedSpec


def run_succeed(engine: Engine, run: StateRun, spec: SucceedSpec, raw: Any) -> tuple[str | None, Any]:
    q, flow = spec.query, spec.flow
    value = q.input(run, flow, raw)
    return None, q.passthrough(run, flow, raw, value, assign=flow.assign, output=flow.output, result=raw)
