"""Live progress of ``sfn-workers run``: one line per state entered and left, a bar per Map.

Lines go to stderr with the execution's clock and each state's duration (and the real time it took,
on a virtual clock), so stdout keeps just the execution's output.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from sfn_workers.local.asl.walk import nested_machines, walk_states

__all__ = ["Progress", "duration"]


# -- live progress ---------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    """Elapsed execution time: ``00:00:01.250``, with days when there are any (``2d 01:00:00.000``)."""
    days, rest = divmod(max(0.0, seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    text = f"{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}"
    return f"{int(days)}d {text}" if days else text


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3_600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86_400:
        return f"{int(seconds // 3_600)} h {int(seconds % 3_600 // 60)} min"
    return f"{int(seconds // 86_400)} d {int(seconds % 86_400 // 3_600)} h"


def _inside_maps(definition: Mapping[str, Any]) -> set[str]:
    """Names of the states inside Map processors (their lines give way to the Map's progress bar)."""
    inner: set[str] = set()
    for visit in walk_states(definition):
        if visit.state.get("Type") == "Map":
            for _, processor in nested_machines(visit.state):
                if isinstance(processor, Mapping):
                    inner.update(v.name for v in walk_states(processor))
    return inner


# Failure events that are not a state's own: the execution's, a Map iteration's, and the
# Parallel/Map summary events (whose previousEventId is not in their own branch).
_NOT_A_STATE_FAILURE = ("Execution", "MapIteration", "ParallelState", "MapState")


class Progress:
    """A history listener that prints one line per state entered and left, and a bar per Map.

    State names are unique in a whole state machine (ASL requires it), so lines are keyed by name.
    """

    BAR = 24

    def __init__(
        self, definition: Mapping[str, Any], out: TextIO | None = None, tty: bool | None = None, real: bool = True
    ) -> None:
        """``real=False`` (a virtual clock): durations also show the real time the state took."""
        self.out = out or sys.stderr
        self.real = real
        self.real_entered: dict[str, float] = {}
        self.tty = self.out.isatty() if tty is None else tty
        self.hidden = _inside_maps(definition)
        self.start: datetime | None = None
        self.entered: dict[str, datetime] = {}
        self.state_of: dict[int, str] = {}
        self.maps: dict[str, list[int]] = {}  # name -> [done, total, last printed step]
        self.open_map: list[str] = []
        self._failed_event: dict[int, str] = {}  # id of a failure event -> its error (to tell retries)
        self._lock = threading.Lock()

    def _at(self, event: Mapping[str, Any]) -> str:
        assert self.start is not None
        return _clock((event["timestamp"] - self.start).total_seconds())

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            self._event(event)

    def _event(self, event: Mapping[str, Any]) -> None:
        kind: str = event["type"]
        if self.start is None:
            self.start = event["timestamp"]
        if kind.endswith("StateEntered"):
            self._entered(event, kind)
            return
        if kind.endswith("StateExited"):
            self._exited(event)
            return
        previous = self.state_of.get(event.get("previousEventId", 0))
        if previous is not None:
            self.state_of[event["id"]] = previous
        self._retry_or_failure(event, kind, previous)
        self._map(event, kind, previous)

    def _entered(self, event: Mapping[str, Any], kind: str) -> None:
        name = event["stateEnteredEventDetails"]["name"]
        self.state_of[event["id"]] = name
        self.entered[name] = event["timestamp"]
        self.real_entered[name] = time.perf_counter()
        if name not in self.hidden:
            self._print(f"{self._at(event)}  ▶ {name} ({kind[: -len('StateEntered')]})")

    def _exited(self, event: Mapping[str, Any]) -> None:
        name = event["stateExitedEventDetails"]["name"]
        began = self.entered.pop(name, event["timestamp"])
        real = time.perf_counter() - self.real_entered.pop(name, time.perf_counter())
        if name not in self.hidden:
            took = duration((event["timestamp"] - began).total_seconds())
            if not self.real:
                took += f" (real {duration(real)})"
            self._print(f"{self._at(event)}  ✔ {name}  {took}")

    def _retry_or_failure(self, event: Mapping[str, Any], kind: str, previous: str | None) -> None:
        if kind in ("LambdaFunctionScheduled", "TaskScheduled") and previous is not None:
            before = event.get("previousEventId", 0)
            if self._failed_event.get(before) and previous not in self.hidden:
                self._print(f"{self._at(event)}  ↻ {previous}  retry after {self._failed_event[before]}")
        elif kind.endswith(("Failed", "TimedOut")) and not kind.startswith(_NOT_A_STATE_FAILURE):
            details: Mapping[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error = details.get("error") or kind
            self._failed_event[event["id"]] = str(error)
            if previous is not None and previous not in self.hidden:
                self._print(f"{self._at(event)}  ✘ {previous}  {error}")

    def _map(self, event: Mapping[str, Any], kind: str, previous: str | None) -> None:
        if kind == "MapStateStarted":
            name = previous or "Map"
            total = int((event.get("mapStateStartedEventDetails") or {}).get("length", 0))
            self.maps[name] = [0, total, -1]
            self.open_map.append(name)
            self._bar(name)
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            found = (event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}).get("name")
            iterated = found or (self.open_map[-1] if self.open_map else None)
            if iterated in self.maps:
                self.maps[iterated][0] += 1
                self._bar(iterated)
        elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted") and self.open_map:
            self.open_map.pop()
            if self.tty:
                self.out.write("\n")

    def _bar(self, name: str) -> None:
        done, total, last = self.maps[name]
        filled = self.BAR if total == 0 else int(self.BAR * done / total)
        bar = f"    {name} [{'#' * filled}{'-' * (self.BAR - filled)}] {done}/{total}"
        if self.tty:
            self.out.write("\r" + bar)
            self.out.flush()
            return
        step = 4 if total == 0 else int(4 * done / total)  # a line at 0, 25, 50, 75 and 100 %
        if step != last:
            self.maps[name][2] = step
            self._print(bar)
