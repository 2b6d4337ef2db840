"""The retry loop: :class:`RetryPolicy`, the :func:`retry` decorator, and what observers are told.

One attempt loop serves sync and async callers; what decides a retry is injected: ``on``, the
jitter strategy, the deadline (inside a ``@task``, the Lambda's own), the :class:`RetryBudget`,
and ``sleep``/``clock``/``rng`` so tests and simulations run without real time.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast, overload

from sfn_workers._botocore import aws_error_code, classify_aws, retry_after
from sfn_workers.context import Deadline, current_context
from sfn_workers.errors import ConfigurationError, RetryBudgetExhausted
from sfn_workers.retries.budget import DEFAULT_BUDGET, RetryBudget
from sfn_workers.retries.classify import TRANSIENT_AWS, RetryOn, predicate
from sfn_workers.retries.jitter import STRATEGIES, Strategy

__all__ = ["RetryEvent", "RetryPolicy", "log_retry", "retry"]

P = ParamSpec("P")
R = TypeVar("R")


def _reason(exc: BaseException) -> str:
    kind = classify_aws(exc)
    code = aws_error_code(exc) or type(exc).__name__
    return f"{kind}:{code}" if kind else code


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """A retry about to happen, or one refused: what the ``observer`` is handed.

    Frozen; ``dataclasses.replace(event, function=...)`` makes a relabelled copy.
    """

    outcome: str
    """``"retry"``, or why not: ``"deadline"`` (the delay would end past it) or ``"budget"`` (empty)."""
    function: str
    """The retried function's qualified name."""
    attempt: int
    """The attempt that just failed (1 = the first call)."""
    delay: float
    """Seconds until the next attempt (for a refusal: the delay it would have waited)."""
    reason: str
    """Why it failed, e.g. ``"throttling:ThrottlingException"`` or the exception class name."""
    exception: BaseException


def log_retry(event: RetryEvent) -> None:
    """The default ``observer``: a log line (attempt, delay, reason) and a metric per event.

    Metrics (docs/operations.md): ``Retries`` (detail ``reason``: throttling, server, connection,
    timeout or the exception class), ``RetriesRefused`` (detail ``cause``: deadline or budget) and,
    when the budget refused, ``RetryBudgetExhausted`` (an alarm watches it: a dependency is failing).
    """
    from sfn_workers import _log, _metrics

    extra = {
        "function": event.function,
        "attempt": event.attempt,
        "delay_s": round(event.delay, 4),
        "reason": event.reason,
    }
    kind = event.reason.split(":", 1)[0]
    if event.outcome == "retry":
        _log.get_logger().warning("retrying downstream call", extra=extra)
        _metrics.count("Retries", reason=kind)
    else:
        message = "retry budget empty: not retrying" if event.outcome == "budget" else "deadline near: not retrying"
        _log.get_logger().warning(message, extra=extra)
        _metrics.count("RetriesRefused", cause=event.outcome)
        if event.outcome == "budget":
            _metrics.count("RetryBudgetExhausted")


def _strategy(jitter: str | Strategy, base: float, cap: float) -> Strategy:
    if callable(jitter):
        return jitter
    factory = STRATEGIES.get(jitter)
    if factory is None:
        raise ConfigurationError(f"jitter must be one of {sorted(STRATEGIES)} or a callable, not {jitter!r}")
    return factory(base, cap)


def _check_deadline(deadline: object) -> None:
    if deadline is None or isinstance(deadline, Deadline):
        return
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        raise ConfigurationError(f"deadline must be seconds or a Deadline, not {deadline!r}")
    if not (math.isfinite(deadline) and deadline >= 0):
        raise ConfigurationError(
            f"deadline={deadline!r} must be a finite number of seconds >= 0 (None means no deadline of its own)"
        )


class _Attempts:
    """The state of one retried call: attempts made, deadline, last delay, budget spent."""

    __slots__ = ("attempt", "deadline", "function", "last_cost", "policy", "previous", "started")

    def __init__(self, policy: RetryPolicy, function: str) -> None:
        self.policy = policy
        self.function = function
        self.attempt = 0
        self.previous = policy.base
        self.last_cost = 0
        self.started = policy.clock()
        ctx = current_context()
        self.deadline = ctx.deadline if ctx is not None else None

    def remaining(self) -> float | None:
        """Seconds left before the earliest deadline (explicit or the task's), or None."""
        left: float | None = None
        explicit = self.policy.deadline
        if isinstance(explicit, int | float):
            left = self.started + float(explicit) - self.policy.clock()
        elif isinstance(explicit, Deadline):
            left = explicit.remaining()
        if self.deadline is not None:
            task_left = self.deadline.remaining()
            left = task_left if left is None else min(left, task_left)
        return left

    def _delay(self, exc: Exception) -> float:
        policy = self.policy
        raw = policy.strategy(self.attempt, self.previous, policy.rng)
        self.previous = raw
        delay = min(policy.cap, max(0.0, raw))
        asked = retry_after(exc)
        if asked is not None:
            delay = min(policy.cap, max(delay, asked))
        return delay

    def after_failure(self, exc: BaseException) -> float | None:
        """The delay before the next attempt, or None to re-raise ``exc`` unchanged.

        Raises :class:`RetryBudgetExhausted` (chained from ``exc``) when the budget refuses.
        """
        policy = self.policy
        if not isinstance(exc, Exception) or not policy.should_retry(exc) or self.attempt >= policy.attempts:
            return None
        delay = self._delay(exc)
        left = self.remaining()
        if left is not None and (left <= 0 or delay > left):
            self.notify("deadline", delay, exc)
            return None
        budget = policy.budget
        if budget is not None:
            cost = budget.cost_of(exc)
            if not budget.acquire(cost):
                self.notify("budget", delay, exc)
                raise RetryBudgetExhausted(
                    f"retry budget empty ({budget.tokens}/{budget.capacity} tokens): not retrying "
                    f"{self.function} after {_reason(exc)} (attempt {self.attempt} of {policy.attempts})"
                ) from exc
            self.last_cost = cost
        self.notify("retry", delay, exc)
        return delay

    def notify(self, outcome: str, delay: float, exc: BaseException) -> None:
        observer = self.policy.observer
        if observer is not None:
            # An observer that fails must not replace the error being retried (or refused).
            with contextlib.suppress(Exception):
                observer(RetryEvent(outcome, self.function, self.attempt, delay, _reason(exc), exc))

    def succeeded(self) -> None:
        budget = self.policy.budget
        if budget is not None:
            budget.release(self.last_cost if self.last_cost else budget.success_refill)


class RetryPolicy:
    """Retry settings bound together; see :func:`retry` for what each option means.

    Use it as a decorator (``@policy``) on sync or async functions, or for one call with
    :meth:`call` / :meth:`acall`. A policy holds no per-call state, so one can be shared.
    """

    def __init__(
        self,
        *,
        on: RetryOn = TRANSIENT_AWS,
        attempts: int = 5,
        base: float = 0.1,
        cap: float = 5.0,
        jitter: str | Strategy = "full",
        deadline: float | Deadline | None = None,
        budget: RetryBudget | None = DEFAULT_BUDGET,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        observer: Callable[[RetryEvent], None] | None = log_retry,
    ) -> None:
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ConfigurationError(f"attempts counts calls (the first included) and must be >= 1, not {attempts!r}")
        if not (base >= 0 and cap >= 0):
            raise ConfigurationError(f"base and cap must not be negative (base={base!r}, cap={cap!r})")
        _check_deadline(deadline)
        if not (budget is None or isinstance(budget, RetryBudget)):
            raise ConfigurationError(f"budget must be a RetryBudget or None, not {budget!r}")
        self.on = on
        self.should_retry = predicate(on)
        self.attempts = attempts
        self.base = float(base)
        self.cap = float(cap)
        self.jitter = jitter
        self.strategy = _strategy(jitter, self.base, self.cap)
        self.deadline = deadline
        self.budget = budget
        self.sleep = sleep
        self.clock = clock
        self.rng = rng if rng is not None else _RNG
        self.observer = observer

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(attempts={self.attempts}, base={self.base}, cap={self.cap}, jitter={self.jitter!r}, "
            f"deadline={self.deadline!r}, budget={self.budget!r})"
        )

    def resolved_budget(self) -> RetryBudget | None:
        """The budget this policy draws from (the process-wide one unless told otherwise)."""
        return self.budget

    # -- running -------------------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` with retries; the last failure propagates unchanged."""
        state = _Attempts(self, _name(fn))
        sleep = self.sleep or time.sleep
        while True:
            state.attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                delay = state.after_failure(exc)
                if delay is None:
                    raise
            else:
                state.succeeded()
                return result
            sleep(delay)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` with retries; ``sleep`` may be sync or async."""
        state = _Attempts(self, _name(fn))
        sleep = self.sleep
        if sleep is None:
            import asyncio  # deferred: ~40 ms at import, and only async callers need it

            sleep = asyncio.sleep
        while True:
            state.attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                delay = state.after_failure(exc)
                if delay is None:
                    raise
            else:
                state.succeeded()
                return result
            slept = sleep(delay)
            if inspect.isawaitable(slept):
                await slept

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or async) so every call goes through this policy."""
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):  # noqa: B004
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(afn, *args, **kwargs)

            async_wrapper.retry = self  # type: ignore[attr-defined]
            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        wrapper.retry = self  # type: ignore[attr-defined]
        return wrapper


_RNG = random.Random()


def _name(fn: Callable[..., object]) -> str:
    # What the log line calls the retried function: its qualified name, a partial's function's,
    # or a callable object's class.
    while isinstance(fn, functools.partial):
        fn = fn.func
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


@overload
def retry(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    fn: None = None,
    /,
    *,
    on: RetryOn = TRANSIENT_AWS,
    attempts: int = 5,
    base: float = 0.1,
    cap: float = 5.0,
    jitter: str | Strategy = "full",
    deadline: float | Deadline | None = None,
    budget: RetryBudget | None = DEFAULT_BUDGET,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    observer: Callable[[RetryEvent], None] | None = log_retry,
) -> RetryPolicy: ...


def retry(
    fn: Callable[P, R] | None = None,
    /,
    *,
    on: RetryOn = TRANSIENT_AWS,
    attempts: int = 5,
    base: float = 0.1,
    cap: float = 5.0,
    jitter: str | Strategy = "full",
    deadline: float | Deadline | None = None,
    budget: RetryBudget | None = DEFAULT_BUDGET,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    observer: Callable[[RetryEvent], None] | None = log_retry,
) -> Callable[P, R] | RetryPolicy:
    """Jittered, deadline-aware, budgeted retries: ``@retry``, ``@retry(...)`` or ``retry(...).call(fn)``.

    Args:
        on: what is retried: exception classes, predicates ``(exc) -> bool``, or a list mixing
            both (default :data:`TRANSIENT_AWS`: throttling, 5xx, connection errors, timeouts).
        attempts: calls in all, the first one included.
        base: scale of the first retry's delay, seconds.
        cap: no single delay is longer, seconds (a server's ``Retry-After`` included).
        jitter: ``"full"`` (default), ``"equal"``, ``"decorrelated"``, ``"none"`` (plain
            exponential), or a :data:`Strategy` callable.
        deadline: seconds from the first attempt (finite, >= 0), or a
            :class:`~sfn_workers.context.Deadline`. Inside a ``@task`` the task's deadline always
            applies too (the earlier one wins). A retry whose delay would end past it is not made:
            the last exception propagates.
        budget: the :class:`RetryBudget` retries draw from (default: the process-wide
            :data:`DEFAULT_BUDGET`; ``None``: unlimited). When it is empty the call raises
            :class:`~sfn_workers.errors.RetryBudgetExhausted`, chained from the last error.
        sleep: how to wait (default ``time.sleep``, ``asyncio.sleep`` for async functions).
        clock: monotonic seconds, for a float ``deadline`` (default ``time.monotonic``).
        rng: a ``random.Random`` for the jitter (default: a module-level one).
        observer: called with a :class:`RetryEvent` before each retry and at each refusal
            (default :func:`log_retry`: a log line and a metric); ``None`` for silence.

    When attempts run out, or ``on`` says no, the last exception propagates unchanged, so a
    state's ``Retry``/``Catch`` sees its own class name.
    """
    policy = RetryPolicy(
        on=on,
        attempts=attempts,
        base=base,
        cap=cap,
        jitter=jitter,
        deadline=deadline,
        budget=budget,
        sleep=sleep,
        clock=clock,
        rng=rng,
        observer=observer,
    )
    if fn is not None:
        return policy(fn)
    return policy
