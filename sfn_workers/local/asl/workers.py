"""A cache of reusable threads for Map iterations and Parallel branches.

Creating a thread per branch costs more than a small state machine's whole run; threads here are
reused and retire after a minute idle. The cache never refuses work (a new thread is made when
none is idle), so nested Map/Parallel states cannot deadlock waiting for a pool slot.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["Latch", "WorkerGroup", "before_blocking", "submit"]

_IDLE_SECONDS = 60.0


class _Worker:
    __slots__ = ("jobs",)

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="asl-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with _lock:
                    if self in _idle:
                        _idle.remove(self)
                        return
                continue  # handed a job just now
            with contextlib.suppress(Exception):  # jobs report their own errors; the worker survives them
                job()
            with _lock:
                _idle.append(self)


_lock = threading.Lock()
_idle: list[_Worker] = []


def submit(job: Callable[[], None]) -> None:
    """Run ``job`` on an idle cached thread, or a new one."""
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
    worker.jobs.put(job)


class Latch:
    """Counts down to zero; ``wait`` blocks until it does."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._cond = threading.Condition(threading.Lock())

    def count_down(self) -> None:
        with self._cond:
            self._count -= 1
            if self._count <= 0:
                self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            while self._count > 0:
                self._cond.wait()


_current = threading.local()


def before_blocking() -> None:
    """The calling thread is about to wait (virtual time, a task token, its own branches).

    If it works for a :class:`WorkerGroup` with items left, the group starts another worker first,
    so that waiting iterations overlap as on AWS instead of running one after another.
    """
    group: WorkerGroup | None = getattr(_current, "group", None)
    if group is not None:
        group.spawn()


class WorkerGroup:
    """Up to ``limit`` threads running ``work`` (a loop that takes items until none are left).

    ``eager`` starts all of them at once (Parallel branches). Otherwise (Map iterations) one starts,
    and another only when a worker is about to wait (:func:`before_blocking`) or the workers took
    fewer items than there are workers in a tick of real time (handlers blocked on I/O): CPU-bound
    iterations then run
    on few threads, without lock and GIL contention, while blocking ones still overlap up to the limit.
    ``hold`` registers each worker with the clock before its thread starts.
    """

    _TICK = 0.002

    def __init__(
        self,
        limit: int,
        work: Callable[[], None],
        has_more: Callable[[], bool],
        progress: Callable[[], int],
        hold: Callable[[], Callable[[], AbstractContextManager[None]]] | None,
    ) -> None:
        self._limit = limit
        self._work = work
        self._has_more = has_more
        self._progress = progress
        self._hold = hold
        self._cond = threading.Condition(threading.Lock())
        self._live = 0
        self.peak = 0

    def spawn(self) -> bool:
        """Start one more worker if there is work left and room under the limit."""
        with self._cond:
            return self._spawn_locked()

    def _spawn_locked(self) -> bool:
        if self._live >= self._limit or not self._has_more():
            return False
        self._live += 1
        self.peak = max(self.peak, self._live)
        registration = self._hold() if self._hold is not None else None
        submit(lambda: self._run(registration))
        return True

    def _run(self, registration: Callable[[], AbstractContextManager[None]] | None) -> None:
        outer = getattr(_current, "group", None)
        _current.group = self
        try:
            if registration is None:
                self._work()
            else:
                with registration():
                    self._work()
        finally:
            _current.group = outer
            with self._cond:
                self._live -= 1
                self._cond.notify_all()

    def run(self, eager: bool, idle: Callable[[], AbstractContextManager[None]] | None) -> None:
        """Start the workers and return when all have finished (``idle`` wraps the waiting)."""
        with self._cond:
            for _ in range(self._limit if eager else 1):
                if not self._spawn_locked():
                    break
        before_blocking()  # this thread now waits: its own group may start another worker
        if idle is None:
            self._wait(eager)
        else:
            with idle():
                self._wait(eager)

    def _wait(self, eager: bool) -> None:
        with self._cond:
            last = self._progress()
            while self._live > 0:
                if eager:
                    self._cond.wait()
                    continue
                if not self._cond.wait(self._TICK):
                    now = self._progress()
                    if now - last < self._live:  # fewer items than workers in a tick: they are blocked
                        self._spawn_locked()
                    last = now
