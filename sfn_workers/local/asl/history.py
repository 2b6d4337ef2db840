"""Execution history with AWS's event type names and ``*EventDetails`` fields.

Events are plain dicts (cheap to build); ``timestamp`` is a datetime from the execution's clock.
Inputs and outputs are JSON text, as GetExecutionHistory returns them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .clock import Clock

__all__ = ["History", "details_key"]

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
    """The ordered event list of one execution (thread-safe; Map/Parallel branches append concurrently)."""

    def __init__(self, clock: Clock, listener: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._clock = clock
        self._listener = listener
        self._lock = threading.Lock()
        self._listener_failed = False

    def add(self, event_type: str, previous: int, details: dict[str, Any] | None = None) -> int:
        """Append an event after event ``previous`` (0 for none); returns the new event's id."""
        event: dict[str, Any] = {
            "id": 0,
            "previousEventId": previous,
            "timestamp": self._clock.now(),
            "type": event_type,
        }
        if details is not None:
            event[_DETAILS_KEYS.get(event_type) or details_key(event_type)] = details
        with self._lock:
            eid = event["id"] = len(self.events) + 1
            self.events.append(event)
        if self._listener is not None:
            try:
                self._listener(event)
            except Exception:  # a broken progress display must not break the execution
                if not self._listener_failed:
                    self._listener_failed = True
                    _log.exception("history listener failed on %s; later failures are not logged", event_type)
        return eid
