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

__all__ = ["Latch", "submit"]

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
