"""The virtual clock is a discrete-event clock across threads: time moves only when all wait."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sfn_workers.local.asl import RealClock, VirtualClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_an_unregistered_sleeper_moves_time_at_once() -> None:
    clock = VirtualClock(T0)
    started = time.monotonic()
    clock.sleep(86_400)
    assert clock.now() == T0 + timedelta(days=1)
    assert time.monotonic() - started < 1.0


def _spawn(clock: VirtualClock, body: object) -> threading.Thread:
    hold = clock.hold()  # registered before the thread starts

    def run() -> None:
        with hold():
            body()  # type: ignore[operator]

    t = threading.Thread(target=run)
    t.start()
    return t


def test_registered_sleepers_wake_in_time_order() -> None:
    # GIVEN three workers sleeping 30, 10 and 20 virtual seconds
    clock = VirtualClock(T0)
    woke: list[tuple[str, datetime]] = []
    lock = threading.Lock()

    def sleeper(name: str, seconds: float) -> object:
        def body() -> None:
            clock.sleep(seconds)
            with lock:
                woke.append((name, clock.now()))

        return body

    with clock.busy():  # the spawning thread is registered, as the interpreter's parent state is
        threads = [_spawn(clock, sleeper(n, s)) for n, s in (("a", 30), ("b", 10), ("c", 20))]
    for t in threads:
        t.join(5)
    # THEN each wakes at its own instant, earliest first
    assert woke == [
        ("b", T0 + timedelta(seconds=10)),
        ("c", T0 + timedelta(seconds=20)),
        ("a", T0 + timedelta(seconds=30)),
    ]


def test_time_stands_still_while_another_worker_is_busy() -> None:
    # GIVEN a worker doing real work (registered) and another waiting 60 virtual seconds
    clock = VirtualClock(T0)
    release = threading.Event()
    seen: list[datetime] = []

    busy = _spawn(clock, lambda: release.wait(5))

    def sleep_then_note() -> None:
        clock.sleep(60)
        seen.append(clock.now())

    sleeper = _spawn(clock, sleep_then_note)
    time.sleep(0.1)
    # THEN the sleeper has not woken: virtual time cannot pass work in flight
    assert seen == [] and clock.now() == T0
    release.set()
    busy.join(5)
    sleeper.join(5)
    assert seen == [T0 + timedelta(seconds=60)]


def test_busy_block_holds_time_for_outside_work() -> None:
    clock = VirtualClock(T0)
    done: list[datetime] = []

    def sleep_then_note() -> None:
        clock.sleep(5)
        done.append(clock.now())

    with clock.busy():
        t = threading.Thread(target=sleep_then_note)
        t.start()
        time.sleep(0.05)
        assert done == []
    t.join(5)
    assert done == [T0 + timedelta(seconds=5)]


def test_a_parent_waiting_for_children_goes_idle() -> None:
    # GIVEN a registered parent that waits for a child sleeping 10 seconds
    clock = VirtualClock(T0)
    out: list[datetime] = []

    def child() -> None:
        clock.sleep(10)
        out.append(clock.now())

    def parent() -> None:
        child_thread = _spawn(clock, child)
        with clock.idle():
            child_thread.join(5)

    p = _spawn(clock, parent)
    p.join(5)
    # THEN the child's sleep completes (no deadlock) at the right virtual instant
    assert out == [T0 + timedelta(seconds=10)]


def test_wait_returns_true_when_the_predicate_comes_true() -> None:
    clock = VirtualClock(T0)
    flag = threading.Event()

    def raise_flag() -> None:
        flag.set()
        clock.wake()

    threading.Timer(0.05, raise_flag).start()
    with clock.busy():  # keep time still, as a worker would
        pass
    assert clock.wait(None, flag.is_set) is True


def test_wait_times_out_in_virtual_time() -> None:
    clock = VirtualClock(T0)
    assert clock.wait(3600, lambda: False) is False
    assert clock.now() == T0 + timedelta(hours=1)


def test_real_clock_waits_for_real() -> None:
    clock = RealClock()
    started = time.monotonic()
    assert clock.wait(0.05, lambda: False) is False
    assert time.monotonic() - started >= 0.04
    assert clock.now().tzinfo is not None


@settings(max_examples=25, deadline=None)
@given(delays=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6))
def test_concurrent_sleepers_each_wake_at_their_own_virtual_instant(delays: list[int]) -> None:
    # GIVEN workers that each sleep a random number of seconds, started by a registered parent
    clock = VirtualClock(T0)
    woke: dict[int, datetime] = {}
    lock = threading.Lock()

    def sleeper(i: int, seconds: int) -> object:
        def body() -> None:
            clock.sleep(seconds)
            with lock:
                woke[i] = clock.now()

        return body

    with clock.busy():
        threads = [_spawn(clock, sleeper(i, s)) for i, s in enumerate(delays)]
    for t in threads:
        t.join(10)
    # THEN every worker woke exactly its delay after the start, and the clock ends at the longest
    assert woke == {i: T0 + timedelta(seconds=s) for i, s in enumerate(delays)}
    assert clock.now() == T0 + timedelta(seconds=max(delays))
