"""The retry budget: a per-process token bucket, like the AWS SDKs' retry quota."""

from __future__ import annotations

import threading

from sfn_workers._botocore import classify_aws
from sfn_workers.errors import ConfigurationError

__all__ = ["DEFAULT_BUDGET", "RetryBudget"]


class RetryBudget:
    """A token bucket that retries draw from and successes refill (the AWS SDKs' retry quota).

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout, which ties up a caller
    longest); a success refunds what its own last retry cost, or ``success_refill`` if it needed
    none. While a dependency is down nothing refills, so after ``capacity / retry_cost`` retries
    every call gets exactly one attempt until calls succeed again. Thread-safe.
    """

    def __init__(
        self,
        capacity: int = 500,
        *,
        retry_cost: int = 5,
        timeout_cost: int = 10,
        success_refill: int = 1,
    ) -> None:
        if capacity < 0 or retry_cost < 0 or timeout_cost < 0 or success_refill < 0:
            raise ConfigurationError("RetryBudget amounts must not be negative")
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refill = success_refill
        self._tokens = capacity
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RetryBudget({self._tokens}/{self.capacity})"

    @property
    def tokens(self) -> int:
        """Tokens left now."""
        return self._tokens

    def cost_of(self, exc: BaseException) -> int:
        """What retrying after ``exc`` costs."""
        return self.timeout_cost if classify_aws(exc) == "timeout" else self.retry_cost

    def acquire(self, amount: int) -> bool:
        """Take ``amount`` tokens if there are that many; False (and take nothing) otherwise."""
        with self._lock:
            if amount > self._tokens:
                return False
            self._tokens -= amount
            return True

    def release(self, amount: int) -> None:
        """Give back up to ``amount`` tokens, never above ``capacity``."""
        if amount <= 0 or self._tokens >= self.capacity:
            return
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + amount)

    def refill(self) -> None:
        """Back to full (for tests and for a process that knows its dependency recovered)."""
        with self._lock:
            self._tokens = self.capacity


#: The process-wide budget that policies share unless given another one (or ``budget=None``).
DEFAULT_BUDGET = RetryBudget()
