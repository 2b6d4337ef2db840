"""Wait: let time pass (Seconds, Timestamp, or their *Path forms), on the execution's clock."""

from __future__ import annotations

from typing import Any

from ..choice import parse_timestamp
from ..errors import StatesError
from ..frame import Engine, StateRun
from ..query import dumps
from ..specs import WaitSpec


def _txt(v: Any) -> str:
    return v if isinstance(v, str) else dumps(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def wait_seconds(engine: Engine, run: StateRun, spec: WaitSpec, raw: Any, value: Any) -> float:
    """How long the state waits from now; a bad value is the state's error (AWS's wording)."""
    q = spec.query
    found = q.read(run, raw, value, spec.seconds, spec.seconds_path)
    if found is not None:
        v, p = found.value, found.path
        if p is not None and not _is_int(v):
            raise StatesError(
                "States.Runtime", f"The SecondsPath parameter cannot be parsed as a long value: {p} == {_txt(v)}"
            )
        if p is not None and v < 0:
            raise StatesError("States.Runtime", f"The SecondsPath parameter references a negative value: {p} == {v}")
        if not _is_int(v) or v < 0:
            raise StatesError(q.error, f"The Seconds field must be a non-negative integer: {v!r}")
        return float(v)
    found = q.read(run, raw, value, spec.timestamp, spec.timestamp_path)
    assert found is not None  # validation requires one of the four fields
    ts = parse_timestamp(found.value)
    if ts is None:
        if found.path is not None:
            raise StatesError(
                "States.Runtime",
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time "
                f"format string: {found.path} == {_txt(found.value)}",
            )
        raise StatesError(q.error, f"The Timestamp field is not a valid timestamp: {found.value!r}")
    return (ts - engine.clock.now()).total_seconds()


def run_wait(engine: Engine, run: StateRun, spec: WaitSpec, raw: Any) -> tuple[str | None, Any]:
    q, flow = spec.query, spec.flow
    value = q.input(run, flow, raw)
    seconds = wait_seconds(engine, run, spec, raw, value)
    out = q.passthrough(
        run,
        flow,
        raw,
        value,
        assign=flow.assign,
        output=flow.output,
        result=raw,
        pause=lambda: engine.sleep(seconds, run.scope),
    )
    return spec.next, out
