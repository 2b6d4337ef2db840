"""Choice: the first rule (JSONPath) or Condition (JSONata) that holds picks the next state."""

from __future__ import annotations

from typing import Any

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..specs import ChoiceSpec


def run_choice(engine: Engine, run: StateRun, spec: ChoiceSpec, raw: Any) -> tuple[str | None, Any]:
    q, flow = spec.query, spec.flow
    value = q.input(run, flow, raw)
    holds = q.conditions(run, raw, value)
    for rule in spec.choices:
        if holds(rule.test):
            out = q.passthrough(run, flow, raw, value, assign=rule.assign, output=rule.output or flow.output)
            return rule.next, out
    if spec.default is None:
        raise StatesError(
            "States.NoChoiceMatched", f"No Choice matched and no Default is specified in state '{spec.name}'"
        )
    return spec.default, q.passthrough(run, flow, raw, value, assign=flow.assign, output=flow.output)
