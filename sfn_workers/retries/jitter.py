"""Jitter strategies: how long to wait before each retry.

From "Exponential Backoff and Jitter" (AWS Architecture Blog, 2015). A strategy is a callable
``(attempt, previous_delay, rng) -> seconds``; the factories here take ``(base, cap)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["STRATEGIES", "Strategy", "decorrelated_jitter", "equal_jitter", "full_jitter", "no_jitter"]

#: A jitter strategy: ``(attempt, previous_delay, rng) -> seconds``. ``attempt`` is 1 for the
#: first retry; ``previous_delay`` is the strategy's last answer (``base`` before the first).
Strategy: TypeAlias = Callable[[int, float, random.Random], float]


def _exp(base: float, cap: float, attempt: int) -> float:
    # min(cap, base * 2 ** (attempt - 1)) without overflowing for very large attempt numbers.
    if base <= 0:
        return 0.0
    exponent = attempt - 1
    if exponent >= 1024 or base * 2.0**exponent >= cap:
        return cap
    return base * 2.0**exponent


def no_jitter(base: float, cap: float) -> Strategy:
    """Plain exponential backoff ``min(cap, base·2^(n-1))``: synchronised clients stay synchronised."""

    def strategy(attempt: int, previous: float, rng: random.Random) -> float:
        return _exp(base, cap, attempt)

    return strategy


def full_jitter(base: float, cap: float) -> Strategy:
    """``U(0, min(cap, base·2^(n-1)))``: the fewest calls for contended resources (the default)."""

    def strategy(attempt: int, previous: float, rng: random.Random) -> float:
        return rng.uniform(0.0, _exp(base, cap, attempt))

    return strategy


def equal_jitter(base: float, cap: float) -> Strategy:
    """Half the exponential delay for sure, half jittered: never retries almost at once."""

    def strategy(attempt: int, previous: float, rng: random.Random) -> float:
        half = _exp(base, cap, attempt) / 2.0
        return half + rng.uniform(0.0, half)

    return strategy


def decorrelated_jitter(base: float, cap: float) -> Strategy:
    """``min(cap, U(base, 3·previous))``: each delay grows from the last one, not the attempt number."""

    def strategy(attempt: int, previous: float, rng: random.Random) -> float:
        return min(cap, rng.uniform(base, max(base, previous) * 3.0))

    return strategy


#: The names ``retry(jitter=...)`` accepts.
STRATEGIES: dict[str, Callable[[float, float], Strategy]] = {
    "full": full_jitter,
    "equal": equal_jitter,
    "decorrelated": decorrelated_jitter,
    "none": no_jitter,
}
