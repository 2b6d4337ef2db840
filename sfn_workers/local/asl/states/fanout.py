"""Running Parallel branches or Map iterations on a group of workers; the first failure cancels the rest.

Tolerated failures (Map's ToleratedFailureCount/Percentage) keep the others going. Every worker
thread is registered with the clock before it starts (workers.py, clock.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import StatesError
from ..frame import Abort, Engine, Scope, StateRun, error_output
from ..specs import Machine
from ..workers import WorkerGroup

__all__ = ["Tolerance", "fan_out", "tolerated"]

_log = logging.getLogger("sfn_workers.local")


@dataclass(frozen=True, slots=True)
class Tolerance:
    count: Any = None
    percentage: Any = None


def tolerated(failed: int, total: int, tolerance: Tolerance | None) -> bool:
    """Whether ``failed`` of ``total`` stays within the tolerance (none tolerated without one)."""
    if failed == 0:
        return True
    if tolerance is None or (tolerance.count is None and tolerance.percentage is None):
        return False
    if tolerance.count is not None and failed <= tolerance.count:
        return True
    pct = tolerance.percentage
    return bool(pct is not None and total and failed * 100.0 / total <= pct)


class _FanOut:
    """The shared state of one fan-out: results, failures, the cancellable group scope."""

    def __init__(
        self,
        engine: Engine,
        run: StateRun,
        jobs: Sequence[tuple[Machine, Any, int | None]],
        item_input: Callable[[int, Any], Any] | None,
        tolerance: Tolerance | None,
    ) -> None:
        self.engine, self.run, self.jobs = engine, run, jobs
        self.item_input, self.tolerance = item_input, tolerance
        self.results: list[Any] = [None] * len(jobs)
        self.failures: list[tuple[int, StatesError]] = []
        self.lock = threading.Lock()
        self.group = Scope(run.scope)  # cancelling it stops every branch
        self.next_index = 0

    def _event(self, kind: str, index: int | None, prev: int | None = None) -> int:
        history = self.engine.history
        details = {"name": self.run.spec.name, "index": index}
        return history.add(kind, len(history.events) if prev is None else prev, details)

    def _fail(self, k: int, err: StatesError, output: bool) -> None:
        with self.lock:
            self.failures.append((k, err))
            if output:
                self.results[k] = error_output(err)
            if not output or not tolerated(len(self.failures), len(self.jobs), self.tolerance):
                self.group.cancelled = True
        self.engine.wake()

    def run_one(self, k: int) -> None:
        machine, value, index = self.jobs[k]
        is_map = self.item_input is not None
        prev = self.run.prev
        if is_map:
            prev = self._event("MapIterationStarted", index, prev)
        try:
            inp = self.item_input(index, value) if self.item_input is not None and index is not None else value
            out, prev = self.engine.run_machine(machine, inp, Scope(self.group), prev)
            self.results[k] = out
            if is_map:
                self._event("MapIterationSucceeded", index, prev)
        except StatesError as err:
            if is_map:
                self._event("MapIterationFailed", index)
            self._fail(k, err, True)
        except Abort:
            if is_map:
                self._event("MapIterationAborted", index)
        except Exception as exc:  # a bug below us: fail the branch visibly rather than lose it
            _log.exception("branch %s of state %s failed inside the interpreter", k, self.run.spec.name)
            self._fail(k, StatesError("States.Runtime", f"Internal error: {type(exc).__name__}: {exc}"), False)

    def worker(self) -> None:
        """Take the next branch or item until none is left or the group is cancelled (stop included)."""
        while True:
            with self.lock:
                k = self.next_index
                if k >= len(self.jobs) or self.group.is_cancelled():
                    return
                self.next_index = k + 1
            self.run_one(k)

    def raise_failure(self) -> None:
        n = len(self.jobs)
        if not self.failures or tolerated(len(self.failures), n, self.tolerance):
            return
        if self.tolerance is not None:
            raise StatesError(
                "States.ExceedToleratedFailureThreshold",
                f"The specified tolerated failure threshold was exceeded: {len(self.failures)} of {n} items failed",
            )
        _k, err = min(self.failures, key=lambda f: f[0])
        again = StatesError(err.error, err.cause)
        again.qualified = getattr(err, "qualified", False)  # type: ignore[attr-defined]
        raise again


def fan_out(
    engine: Engine,
    run: StateRun,
    jobs: Sequence[tuple[Machine, Any, int | None]],
    workers: int,
    item_input: Callable[[int, Any], Any] | None,
    tolerance: Tolerance | None = None,
) -> list[Any]:
    """Run branches (Parallel) or iterations (Map, with ``item_input``) on at most ``workers`` threads."""
    state = _FanOut(engine, run, jobs, item_input, tolerance)
    n = len(jobs)
    if workers <= 1 or n <= 1:
        state.worker()
    else:
        pool = WorkerGroup(
            min(workers, n),
            state.worker,
            lambda: state.next_index < n and not state.group.is_cancelled(),
            lambda: state.next_index,
            engine.clock.hold,
        )
        pool.run(eager=item_input is None, idle=engine.clock.idle)
    engine.check(run.scope)
    state.raise_failure()
    return state.results
