"""Execution history with AWS's event type names and ``*EventDetails`` fields.

Events are plain dicts (cheap to build); ``timestamp`` is a datetime from the execution's clock.
Inputs and outputs are JSON text, as GetExecutionHistory returns them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..._limits import HISTORY_EVENTS_MAX
from .clock import Clock

__all__ = ["HISTORY_LIMIT_CAUSE", "TERMINAL_EVENTS", "History", "details_key"]

#: The events that end an execution; the only ones accepted as the last event under the cap.
TERMINAL_EVENTS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
#: AWS's cause when an execution is failed for its history length (with ``States.Runtime``).
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events ({max_events})."

_log = logging.getLogger("sfn_workers.local")

_DETAILS_KEYS: dict[str, str] = {}


def details_key(event_type: str) -> str:
    """``TaskStateEntered`` -> ``stateEnteredEventDetails``; ``LambdaFunctionFailed`` -> ``lambdaFunction...``."""
    key = _DETAILS_KEYS.get(event_type)
    if key is None:
        base = event_type
        for kind in ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"):
            if event_type in (kind + "StateEntered", kind + "StateExited"):
                base = event_type[len(kind) :]
                break
        key = base[0].lower() + base[1:] + "EventDetails"
        _DETAILS_KEYS[event_type] = key
    return key


class History:
    """The ordered event list of one execution (thread-safe; Map/Parallel branches append concurrently).

    Like AWS, it holds at most ``max_events`` events: the last place is kept for the event that ends
    the execution. The first event refused calls ``on_full`` with AWS's cause (the interpreter fails
    the execution with ``States.Runtime``); events refused after that are dropped, so a runaway loop
    costs bounded memory while it winds down.
    """

    def __init__(
        self,
        clock: Clock,
        listener: Callable[[dict[str, Any]], None] | None = None,
        *,
        max_events: int | None = None,
        on_full: Callable[[str], None] | None = None,
    ) -> None:
        self.events: list[dict[str, Any]] = []
        self.full = False
        self._clock = clock
        self._listener = listener
        self._lock = threading.Lock()
        self._listener_failed = False
        #: The cap; a benchmark may lift it (AWS never does).
        self.max_events = HISTORY_EVENTS_MAX if max_events is None else max_events
        self._on_full = on_full

    def add(self, event_type: str, previous: int, details: dict[str, Any] | None = None) -> int:
        """Append an event after event ``previous`` (0 for none); returns the new event's id.

        Past the cap the event is not recorded and the id of the last recorded event is returned.
        """
        event: dict[str, Any] = {
            "id": 0,
            "previousEventId": previous,
            "timestamp": self._clock.now(),
            "type": event_type,
        }
        if details is not None:
            event[_DETAILS_KEYS.get(event_type) or details_key(event_type)] = details
        with self._lock:
            room = self.max_events if event_type in TERMINAL_EVENTS else self.max_events - 1
            refused = len(self.events) >= room
            first_refused = refused and not self.full
            if refused:
                self.full = True
                eid = len(self.events)
            else:
                eid = event["id"] = len(self.events) + 1
                self.events.append(event)
        if refused:
            if first_refused and self._on_full is not None:
                self._on_full(HISTORY_LIMIT_CAUSE.format(max_events=self.max_events))
            return eid
        if self._listener is not None:
            try:
                self._listener(event)
            except Exception:  # a broken progress display must not break the execution
                if not self._listener_failed:
                    self._listener_failed = True
                    _log.exception("history listener failed on %s; later failures are not logged", event_type)
        return eid
