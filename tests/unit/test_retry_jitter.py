"""Jitter strategies: each delay stays in its mode's bounds, and is spread the way the mode promises.

Seeded and statistical: many draws per attempt, checked against the distribution's bounds and mean.
"""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfn_workers import RetryBudget, retry
from sfn_workers.retries import decorrelated_jitter, equal_jitter, full_jitter, no_jitter

BASE, CAP = 0.1, 5.0


class FailsTimes:
    """Raises TimeoutError the first ``n`` calls, then returns "ok"."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self) -> str:
        if self.left:
            self.left -= 1
            raise TimeoutError
        return "ok"


DRAWS = 4000


def window(attempt: int) -> float:
    return min(CAP, BASE * 2.0 ** (attempt - 1))


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 7, 10, 60])
def test_full_jitter_is_uniform_over_zero_to_the_window(attempt: int) -> None:
    rng = random.Random(attempt)
    strategy = full_jitter(BASE, CAP)
    draws = [strategy(attempt, 0.0, rng) for _ in range(DRAWS)]
    top = window(attempt)
    assert all(0.0 <= d <= top for d in draws)
    # U(0, top): mean top/2, and both halves of the range are used
    assert statistics.fmean(draws) == pytest.approx(top / 2, rel=0.05)
    assert min(draws) < 0.05 * top and max(draws) > 0.95 * top


@pytest.mark.parametrize("attempt", [1, 2, 4, 8, 40])
def test_equal_jitter_waits_at_least_half_the_window(attempt: int) -> None:
    rng = random.Random(attempt)
    strategy = equal_jitter(BASE, CAP)
    draws = [strategy(attempt, 0.0, rng) for _ in range(DRAWS)]
    top = window(attempt)
    assert all(top / 2 <= d <= top for d in draws)
    assert statistics.fmean(draws) == pytest.approx(0.75 * top, rel=0.03)


@pytest.mark.parametrize("previous", [BASE, 0.3, 1.0, 2.0, 4.9])
def test_decorrelated_jitter_grows_from_the_previous_delay(previous: float) -> None:
    rng = random.Random(int(previous * 100))
    strategy = decorrelated_jitter(BASE, CAP)
    draws = [strategy(3, previous, rng) for _ in range(DRAWS)]
    top = min(CAP, 3 * previous)
    assert all(BASE <= d <= top for d in draws)
    if 3 * previous <= CAP:  # uncapped: U(base, 3*previous)
        assert statistics.fmean(draws) == pytest.approx((BASE + 3 * previous) / 2, rel=0.05)


def test_no_jitter_is_plain_capped_exponential() -> None:
    strategy = no_jitter(BASE, CAP)
    rng = random.Random(0)
    assert [strategy(n, 0.0, rng) for n in range(1, 9)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert strategy(10_000, 0.0, rng) == CAP  # no overflow for huge attempt numbers


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated", "none"])
def test_policy_delays_per_mode_stay_within_bounds_and_cap(jitter: str) -> None:
    # GIVEN a call that fails 9 times, run through the policy many times with a seeded rng
    slept: list[list[float]] = []
    rng = random.Random(42)
    for _ in range(300):
        delays: list[float] = []
        retry(
            on=TimeoutError,
            attempts=10,
            base=BASE,
            cap=1.0,
            jitter=jitter,
            sleep=delays.append,
            rng=rng,
            budget=None,
            observer=None,
        ).call(FailsTimes(9))
        slept.append(delays)
    # THEN every delay is within [0, cap], and each retry's delays are within that mode's window
    for delays in slept:
        assert len(delays) == 9
        assert all(0.0 <= d <= 1.0 for d in delays)
        for n, d in enumerate(delays, start=1):
            top = min(1.0, BASE * 2 ** (n - 1))
            if jitter == "full":
                assert d <= top
            elif jitter == "equal":
                assert top / 2 <= d <= top
            elif jitter == "none":
                assert d == pytest.approx(top)
            else:
                assert d >= BASE
    if jitter != "none":  # jittered delays of the same retry differ between calls
        assert len({round(delays[1], 9) for delays in slept}) > 250


def test_a_custom_strategy_callable_is_used_and_capped() -> None:
    seen: list[tuple[int, float]] = []

    def linear(attempt: int, previous: float, rng: random.Random) -> float:
        seen.append((attempt, previous))
        return attempt * 2.0

    delays: list[float] = []
    retry(on=TimeoutError, jitter=linear, cap=5.0, base=0.5, sleep=delays.append, budget=RetryBudget()).call(
        FailsTimes(3)
    )
    assert delays == [2.0, 4.0, 5.0]
    assert seen == [(1, 0.5), (2, 2.0), (3, 4.0)]  # previous: the strategy's last answer, base first


@given(
    base=st.floats(0.0, 10.0),
    cap=st.floats(0.0, 100.0),
    attempt=st.integers(1, 5000),
    previous=st.floats(0.0, 100.0),
    seed=st.integers(0, 2**32),
)
def test_every_strategy_stays_between_zero_and_cap(
    base: float, cap: float, attempt: int, previous: float, seed: int
) -> None:
    rng = random.Random(seed)
    for factory in (full_jitter, equal_jitter, no_jitter):
        assert 0.0 <= factory(base, cap)(attempt, previous, rng) <= cap
    if base <= cap:
        assert 0.0 <= decorrelated_jitter(base, cap)(attempt, previous, rng) <= cap
