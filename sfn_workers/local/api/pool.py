"""The threads executions run on: a bounded pool with a bounded queue.

Threads start on demand, up to ``size`` (``--max-executions``); started executions beyond that wait
in a queue, RUNNING, for a free thread, and at most ``queue_limit`` of them: the next StartExecution
is refused (``ExecutionLimitExceeded``) instead of growing memory without bound. Threads are daemons:
a handler stuck in user code must not keep the process alive.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["ExecutionPool", "QueueFull"]

_log = logging.getLogger("sfn_workers.local.api")


class QueueFull(Exception):
    """Every thread is busy and the queue holds ``queue_limit`` jobs already."""


class ExecutionPool:
    def __init__(self, size: int, queue_limit: int) -> None:
        self.size = max(1, size)
        self.queue_limit = max(0, queue_limit)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._pending = 0  # submitted, not yet taken by a thread
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a free thread, or queue it; :class:`QueueFull` if the queue is at its limit."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            waiting = self._pending - self._idle  # jobs that will wait for a thread
            if waiting >= self.queue_limit and len(self._threads) >= self.size:
                raise QueueFull
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"sfn-execution-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._pending -= 1
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job's failure must not kill the worker
                _log.exception("serve: an execution job failed")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)

    @property
    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread."""
        with self._lock:
            return max(0, self._pending - self._idle)
