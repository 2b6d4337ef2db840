"""A cache of reusable threads for Map iterations and Parallel branches.

Creating a thread per branch costs more than a small state machine's whole run; threads here are
reused and retire after a minute idle. The cache never refuses work (a new thread is made when
none is idle), so nested Map/Parallel states cannot deadlock waiting for a pool slot.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["WorkerGroup", "before_blocking", "submit"]

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


_current = threading.local()


def before_blocking() -> None:
    """The calling thread is about to wait (virtual time, a task token, its own branches).

    If it works for a :class:`WorkerGroup` with items left, the group starts another worker first,
    so that waiting iterations overlap as on AWS instead of running one after another.
    """
    for group in reversed(_stack()):  # every group this thread works for, innermost first
        group.spawn()


def _stack() -> list[WorkerGroup]:
    stack: list[WorkerGroup] | None = getattr(_current, "stack", None)
    if stack is None:
        stack = _current.stack = []
    return stack


class _Monitor:
    """One shared thread that looks at every running Map group each tick (2 ms) and lets a group
    whose workers took fewer items than there are workers (they are blocked, e.g. on I/O) start
    another. It sleeps while no group runs."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._groups: set[WorkerGroup] = set()
        self._thread: threading.Thread | None = None

    def add(self, group: WorkerGroup) -> None:
        with self._cond:
            self._groups.add(group)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="asl-map-monitor", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, group: WorkerGroup) -> None:
        with self._cond:
            self._groups.discard(group)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._groups:
                    self._cond.wait()
                groups = list(self._groups)
            time.sleep(WorkerGroup.TICK)
            for group in groups:
                group.tick()


class WorkerGroup:
    """Up to ``limit`` workers running ``work`` (a loop that takes items until none are left).

    The calling thread is the first worker (no thread handoff for a small fan-out). ``eager`` starts
    the others at once (Parallel branches). Otherwise (Map iterations) another worker starts only
    when one is about to wait (:func:`before_blocking`: a Wait state, a retry, a task token, its own
    branches) or when, in a tick of real time, the workers took fewer items than there are workers
    (handlers blocked on I/O; a shared monitor thread looks, two ticks running). CPU-bound iterations
    thus run on one thread (a few on a loaded machine), free of lock and GIL contention, and waiting
    or blocking ones still overlap up to the limit.
    ``hold`` registers each extra worker with the clock before its thread starts.
    """

    TICK = 0.002

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
        self._last = 0
        self._strikes = 0
        self.peak = 0

    def spawn(self) -> bool:
        """Start one more worker if there is work left and room under the limit."""
        with self._cond:
            return self._spawn_locked()

    def tick(self) -> None:
        """Called by the monitor: fewer items taken than workers in two ticks running means they block."""
        with self._cond:
            now = self._progress()
            if now - self._last >= self._live:
                self._strikes = 0
            else:
                self._strikes += 1
                if self._strikes >= 2:
                    self._strikes = 0
                    self._spawn_locked()
            self._last = now

    def _spawn_locked(self) -> bool:
        if self._live >= self._limit or not self._has_more():
            return False
        self._live += 1
        self.peak = max(self.peak, self._live)
        registration = self._hold() if self._hold is not None else None
        submit(lambda: self._run(registration))
        return True

    def _run(self, registration: Callable[[], AbstractContextManager[None]] | None) -> None:
        outer = getattr(_current, "stack", None)
        _current.stack = [self]  # a pooled thread works for this group only
        try:
            if registration is None:
                self._work()
            else:
                with registration():
                    self._work()
        finally:
            _current.stack = outer
            with self._cond:
                self._live -= 1
                self._cond.notify_all()

    def run(self, eager: bool, idle: Callable[[], AbstractContextManager[None]] | None) -> None:
        """Work as the first worker, then wait (``idle``) until every other worker has finished."""
        with self._cond:
            self._live += 1  # this thread
            self.peak = max(self.peak, self._live)
            self._last = self._progress()
            if eager:
                for _ in range(self._limit - 1):
                    if not self._spawn_locked():
                        break
        if not eager:
            _MONITOR.add(self)
        stack = _stack()
        stack.append(self)  # this thread now works for the enclosing groups and this one
        try:
            self._work()
        finally:
            stack.pop()
            with self._cond:
                self._live -= 1
                busy = self._live > 0
            if not busy:
                _MONITOR.remove(self)
        if not busy:
            return
        before_blocking()  # this thread now waits: its own group may start another worker
        try:
            if idle is None:
                self._wait()
            else:
                with idle():
                    self._wait()
        finally:
            _MONITOR.remove(self)

    def _wait(self) -> None:
        with self._cond:
            while self._live > 0:
                self._cond.wait()


_MONITOR = _Monitor()
