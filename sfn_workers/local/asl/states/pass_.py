"""Pass: its input (or ``Result``, JSONPath) through the state's output handling."""

from __future__ import annotations

from typing import Any

from ..frame import Engine, StateRun
from ..specs import ABSENT, PassSpec


def run_pass(engine: Engine, run: StateRun, spec: PassSpec, raw: Any) -> tuple[str | None, Any]:
    q = spec.query
    args = q.arguments(run, spec.flow, raw)  # evaluated even beside Result: its errors are the state's
    result = args if spec.result is ABSENT else spec.result
    return spec.next, q.finish(run, spec.flow, raw, result, default_output=raw)
