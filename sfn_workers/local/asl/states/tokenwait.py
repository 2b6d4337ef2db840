"""Waiting for a ``.waitForTaskToken`` task's answer, honouring HeartbeatSeconds and TimeoutSeconds.

Time is the execution's clock: on the virtual clock a timeout passes in no real time once every
other worker waits, and the waiter first keeps time still for a short real-time grace (clock.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..tokens import TokenTicket
from ..workers import before_blocking


def _limit(engine: Engine, now: datetime, started: datetime, beat_at: datetime, limits: Any) -> float | None:
    """Seconds until the first of TimeoutSeconds, HeartbeatSeconds or the execution's deadline."""
    timeout, heartbeat = limits
    found = []
    if timeout is not None:
        found.append(timeout - (now - started).total_seconds())
    if heartbeat is not None:
        found.append(heartbeat - (now - beat_at).total_seconds())
    if engine.deadline is not None:
        found.append((engine.deadline - now).total_seconds())
    return max(0.0, min(found)) if found else None


def await_token(
    engine: Engine,
    run: StateRun,
    ticket: TokenTicket,
    started: datetime,
    limits: tuple[float | None, float | None],
) -> Any:
    """The token's output (SendTaskSuccess), or its failure / timeout as the state's error."""
    timeout, heartbeat = limits
    clock, scope = engine.clock, run.scope
    seen = ticket.heartbeats
    beat_at = clock.now()
    before_blocking()
    while True:

        def ready(seen: int = seen) -> bool:
            return ticket.answered or ticket.heartbeats != seen or scope.is_cancelled()

        fired = clock.wait(_limit(engine, clock.now(), started, beat_at, limits), ready, engine.token_grace)
        if ticket.answered:
            break
        engine.check(scope)
        if ticket.heartbeats != seen:
            seen = ticket.heartbeats
            beat_at = clock.now()
            continue
        if fired:
            continue
        now = clock.now()
        engine.tokens.close(ticket, "timed_out")
        if ticket.answered:
            break
        if timeout is not None and (now - started).total_seconds() >= timeout:
            raise StatesError("States.Timeout", None)
        if heartbeat is not None and (now - beat_at).total_seconds() >= heartbeat:
            raise StatesError("States.HeartbeatTimeout", None)
    if ticket.outcome == "success":
        return ticket.output
    raise StatesError(ticket.error, ticket.cause)  # type: ignore[arg-type]
