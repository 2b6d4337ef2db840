"""Clocks for the interpreter: a discrete-event virtual clock across threads, and the real clock.

Rule of the virtual clock (why it is sound with concurrent branches): simulated time moves only
when *every* thread registered with the clock is waiting on it. A thread that runs a state (the
execution's own thread, each Map/Parallel worker) holds a registration; a Lambda handler running
in-process keeps its thread registered and therefore stops time while it works; a thread waiting
for its child branches goes :meth:`VirtualClock.idle` so the children's waits can proceed. When all
are waiting, the earliest wake-up time wins: time jumps there and that sleeper alone resumes.

Work that happens outside the interpreter but will report back to it (an SQS event source mapping
delivering a batch, an HTTP SendTask* call in flight) must hold :meth:`VirtualClock.busy` while it
runs, so that a task-token wait cannot time out in virtual time ahead of it. As a safety net, a
waiter may ask for a short real-time *grace* during which it keeps time still before it idles.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the interpreter and the runner need from time (both clocks below implement all of it).

    ``hold``/``busy``/``idle``/``wake`` only matter to a virtual clock; the real clock's do nothing
    (``wake`` re-checks its waiters). A caller never needs to ask which clock it has.
    """

    @property
    def virtual(self) -> bool:
        """True when time is simulated: synchronous calls take no time on it."""
        ...

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, seconds: float | None, predicate: Callable[[], bool] | None, grace: float = 0.0) -> bool:
        """Wait until ``predicate()`` holds (True) or ``seconds`` pass (False); None waits without a limit."""
        ...

    def wake(self) -> None:
        """Re-check the predicates of all waiters (call after changing what they wait for)."""
        ...

    def hold(self) -> Callable[[], AbstractContextManager[None]]:
        """Register one more worker now; enter the returned context in the thread that runs it."""
        ...

    def busy(self) -> AbstractContextManager[None]:
        """Keep time still while the block runs (work outside the interpreter that will report back)."""
        ...

    def idle(self) -> AbstractContextManager[None]:
        """Mark the current registered thread as waiting on something else (e.g. its child branches)."""
        ...


class _Registration(threading.local):
    depth: int = 0


class VirtualClock:
    """Simulated time: waits return as soon as every registered thread is waiting (see module doc)."""

    virtual = True  # synchronous calls take no time on this clock

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._heap: list[tuple[datetime, int]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count()
        self._local = _Registration()

    def now(self) -> datetime:
        return self._now

    # -- registration -------------------------------------------------------------------------
    def hold(self) -> Callable[[], AbstractContextManager[None]]:
        """Count one more runnable worker now; the returned callable binds it to the thread that runs it.

        Call in the parent *before* starting the worker thread, so there is no instant at which
        the worker exists but time may move.
        """
        with self._cond:
            self._active += 1
        return lambda: _Hold(self)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Keep virtual time still while the block runs (for work outside the interpreter)."""
        with self.hold()():
            yield

    @contextmanager
    def idle(self) -> Iterator[None]:
        """Mark the current (registered) thread as waiting on something else, e.g. its child branches."""
        registered = self._local.depth > 0
        if registered:
            self._release_one()
        try:
            yield
        finally:
            if registered:
                with self._cond:
                    self._active += 1

    def _release_one(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    # -- waiting ------------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        self.wait(seconds, None)

    def wake(self) -> None:
        """Re-check the predicates of all waiters (call after changing what they wait for)."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, seconds: float | None, predicate: Callable[[], bool] | None, grace: float = 0.0) -> bool:
        """Wait until ``predicate()`` holds (True) or ``seconds`` of virtual time pass (False).

        ``seconds=None`` waits without a time limit (only the predicate ends it). ``grace`` is real
        time during which this thread keeps virtual time still before it counts as waiting.
        """
        registered = self._local.depth > 0
        with self._cond:
            if predicate is not None and predicate():
                return True
            if grace > 0 and predicate is not None and self._cond.wait_for(predicate, grace):
                return True
            seq = next(self._seq)
            wake_at = None if seconds is None else self._now + timedelta(seconds=max(0.0, seconds))
            if wake_at is not None:
                heapq.heappush(self._heap, (wake_at, seq))
            if registered:
                self._active -= 1
                self._cond.notify_all()
            try:
                while True:
                    if predicate is not None and predicate():
                        if wake_at is not None:
                            self._cancelled.add(seq)
                        return True
                    self._drop_cancelled()
                    if wake_at is not None and self._active <= 0 and self._heap and self._heap[0][1] == seq:
                        heapq.heappop(self._heap)
                        if wake_at > self._now:
                            self._now = wake_at
                        self._cond.notify_all()
                        return False
                    self._cond.wait()
            finally:
                if registered:
                    self._active += 1

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][1] in self._cancelled:
            self._cancelled.discard(heapq.heappop(self._heap)[1])


class _Hold:
    """A registration bound to the thread that enters it; leaving releases it."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def __enter__(self) -> None:
        self._clock._local.depth += 1

    def __exit__(self, *exc: object) -> None:
        self._clock._local.depth -= 1
        self._clock._release_one()


class _NoHold:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class RealClock:
    """Wall-clock time; waits really wait (``sfn-workers run --real-time``)."""

    virtual = False

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def hold(self) -> Callable[[], AbstractContextManager[None]]:
        return _NoHold

    @contextmanager
    def busy(self) -> Iterator[None]:
        yield

    @contextmanager
    def idle(self) -> Iterator[None]:
        yield

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait(self, seconds: float | None, predicate: Callable[[], bool] | None, grace: float = 0.0) -> bool:
        with self._cond:
            if predicate is None:
                self._cond.wait_for(lambda: False, seconds)
                return False
            return self._cond.wait_for(predicate, seconds)
