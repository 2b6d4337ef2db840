"""Jittered, deadline-aware, budgeted retries for downstream calls.

``retry(...)`` builds a :class:`RetryPolicy`: a decorator for sync and async functions, and a
helper for one call (``policy.call(fn, ...)``, ``await policy.acall(fn, ...)``). One attempt loop
serves both; everything that decides a retry is a small, injectable piece:

* ``on``: which failures are worth another try (default :data:`TRANSIENT_AWS`);
* the jitter strategy: how long to wait (:func:`full_jitter` and friends, tenacity-style callables);
* the deadline: no sleep may end past it (inside a ``@task``, the Lambda's own deadline);
* the :class:`RetryBudget`: a per-process token bucket like the AWS SDKs' retry quota, so a
  dependency that is down gets one call per request instead of ``attempts`` of them;
* ``sleep``, ``clock`` and ``rng``, so tests and simulations run without real time.

AWS error codes are read here and in :mod:`sfn_workers.errors` only; botocore is never imported
(its exception classes are recognised by name through the MRO), and asyncio only by async callers,
so this module adds next to nothing to a cold start.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast, overload

from sfn_workers.context import Deadline, current_context
from sfn_workers.errors import ConfigurationError, RetryBudgetExhausted, aws_error_code, aws_status_code

__all__ = [
    "DEFAULT_BUDGET",
    "THROTTLING_CODES",
    "TRANSIENT_AWS",
    "TRANSIENT_CODES",
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "Strategy",
    "classify_aws",
    "decorrelated_jitter",
    "equal_jitter",
    "full_jitter",
    "log_retry",
    "no_jitter",
    "retry",
    "retry_after",
]

P = ParamSpec("P")
R = TypeVar("R")

#: A jitter strategy: ``(attempt, previous_delay, rng) -> seconds``. ``attempt`` is 1 for the
#: first retry; ``previous_delay`` is the strategy's last answer (``base`` before the first).
Strategy: TypeAlias = Callable[[int, float, random.Random], float]

# --------------------------------------------------------------------------------------------
# Classification of AWS errors
# --------------------------------------------------------------------------------------------

#: Error codes AWS services answer when they throttle (the union botocore's standard mode knows).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
#: Error codes of transient server-side failures that may come without a 5xx status.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# botocore.exceptions classes whose subclasses are transport failures (botocore's own standard
# mode retries exactly these two trees); the timeout ones cost more budget, like in the SDKs.
_BOTOCORE = "botocore.exceptions"
_TRANSPORT_CLASSES = frozenset({"ConnectionError", "HTTPClientError"})
_TIMEOUT_CLASSES = frozenset({"ReadTimeoutError", "ConnectTimeoutError"})


def _botocore_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == _BOTOCORE}


def classify_aws(exc: BaseException) -> str | None:
    """Why ``exc`` is a transient AWS failure, or None if it is not one.

    Answers ``"throttling"`` (a throttling error code), ``"timeout"`` (botocore read/connect
    timeout), ``"connection"`` (other botocore transport errors), ``"server"`` (a 5xx status or a
    transient server error code). Validation, access and not-found errors answer None.
    """
    code = aws_error_code(exc)
    if code is not None:
        if code in THROTTLING_CODES:
            return "throttling"
        if code in TRANSIENT_CODES:
            return "server"
    status = aws_status_code(exc)
    if status is not None and 500 <= status <= 599:
        return "server"
    if code is None and status is None:
        names = _botocore_names(exc)
        if names & _TIMEOUT_CLASSES:
            return "timeout"
        if names & _TRANSPORT_CLASSES:
            return "connection"
    return None


def TRANSIENT_AWS(exc: BaseException) -> bool:
    """Retry botocore throttling errors, 5xx answers, connection errors and timeouts; nothing else."""
    return classify_aws(exc) is not None


def retry_after(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (its ``Retry-After`` header), or None.

    Both forms of the header are understood: delta-seconds and an HTTP date (compared with
    ``now()``, wall-clock seconds).
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    meta = response.get("ResponseMetadata")
    headers = meta.get("HTTPHeaders") if isinstance(meta, Mapping) else None
    if not isinstance(headers, Mapping):
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        import email.utils  # deferred: only HTTP-date headers need it, and it costs cold-start time

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _reason(exc: BaseException) -> str:
    kind = classify_aws(exc)
    code = aws_error_code(exc) or type(exc).__name__
    return f"{kind}:{code}" if kind else code


# --------------------------------------------------------------------------------------------
# Jitter strategies ("Exponential Backoff and Jitter", AWS Architecture Blog, 2015)
# --------------------------------------------------------------------------------------------


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


_STRATEGIES: dict[str, Callable[[float, float], Strategy]] = {
    "full": full_jitter,
    "equal": equal_jitter,
    "decorrelated": decorrelated_jitter,
    "none": no_jitter,
}

# --------------------------------------------------------------------------------------------
# Retry budget
# --------------------------------------------------------------------------------------------


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


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT_BUDGET"


_DEFAULT = _Default()

# --------------------------------------------------------------------------------------------
# Observing retries
# --------------------------------------------------------------------------------------------


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

    Metrics: ``Retries`` (dimension ``reason``: throttling, server, connection, timeout or the
    exception class) and ``RetriesRefused`` (dimension ``cause``: deadline or budget).
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


# --------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------


def _predicate(on: Any) -> Callable[[BaseException], bool]:
    if isinstance(on, type):
        if not issubclass(on, BaseException):
            raise ConfigurationError(f"on= takes exception classes or predicates, not the class {on.__name__}")
        cls = on
        return lambda exc: isinstance(exc, cls)
    if callable(on):
        return cast(Callable[[BaseException], bool], on)
    if isinstance(on, Iterable) and not isinstance(on, str | bytes):
        items = list(on)
        parts = [_predicate(item) for item in items]
        if all(isinstance(item, type) for item in items):
            classes = tuple(items)
            return lambda exc: isinstance(exc, classes)
        return lambda exc: any(part(exc) for part in parts)
    raise ConfigurationError(f"on= takes exception classes or predicates, not {on!r}")


def _strategy(jitter: str | Strategy, base: float, cap: float) -> Strategy:
    if callable(jitter):
        return jitter
    factory = _STRATEGIES.get(jitter)
    if factory is None:
        raise ConfigurationError(f"jitter must be one of {sorted(_STRATEGIES)} or a callable, not {jitter!r}")
    return factory(base, cap)


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
        self.deadline = policy._deadline_now()

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

    def after_failure(self, exc: BaseException) -> float | None:
        """The delay before the next attempt, or None to re-raise ``exc`` unchanged.

        Raises :class:`RetryBudgetExhausted` (chained from ``exc``) when the budget refuses.
        """
        policy = self.policy
        if not isinstance(exc, Exception) or not policy.should_retry(exc):
            return None
        if self.attempt >= policy.attempts:
            return None
        raw = policy.strategy(self.attempt, self.previous, policy.rng)
        self.previous = raw
        delay = min(policy.cap, max(0.0, raw))
        asked = retry_after(exc)
        if asked is not None:
            delay = min(policy.cap, max(delay, asked))
        left = self.remaining()
        if left is not None and (left <= 0 or delay > left):
            self.notify("deadline", delay, exc)
            return None
        budget = policy.resolved_budget()
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
            observer(RetryEvent(outcome, self.function, self.attempt, delay, _reason(exc), exc))

    def succeeded(self) -> None:
        budget = self.policy.resolved_budget()
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
        on: Any = TRANSIENT_AWS,
        attempts: int = 5,
        base: float = 0.1,
        cap: float = 5.0,
        jitter: str | Strategy = "full",
        deadline: float | Deadline | None = None,
        budget: RetryBudget | _Default | None = _DEFAULT,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        observer: Callable[[RetryEvent], None] | None = log_retry,
    ) -> None:
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ConfigurationError(f"attempts counts calls (the first included) and must be >= 1, not {attempts!r}")
        if not (base >= 0 and cap >= 0):
            raise ConfigurationError(f"base and cap must not be negative (base={base!r}, cap={cap!r})")
        if deadline is not None and not isinstance(deadline, Deadline | int | float):
            raise ConfigurationError(f"deadline must be seconds or a Deadline, not {deadline!r}")
        if not (budget is None or isinstance(budget, RetryBudget | _Default)):
            raise ConfigurationError(f"budget must be a RetryBudget or None, not {budget!r}")
        self.on = on
        self.should_retry = _predicate(on)
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
        if isinstance(self.budget, _Default):
            return DEFAULT_BUDGET
        return self.budget

    def _deadline_now(self) -> Deadline | None:
        ctx = current_context()
        return ctx.deadline if ctx is not None else None

    # -- running -------------------------------------------------------------------------------

    def call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
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

    async def acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
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


def _name(fn: Callable[..., Any]) -> str:
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
    on: Any = TRANSIENT_AWS,
    attempts: int = 5,
    base: float = 0.1,
    cap: float = 5.0,
    jitter: str | Strategy = "full",
    deadline: float | Deadline | None = None,
    budget: RetryBudget | _Default | None = _DEFAULT,
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    observer: Callable[[RetryEvent], None] | None = log_retry,
) -> RetryPolicy: ...


def retry(
    fn: Callable[P, R] | None = None,
    /,
    *,
    on: Any = TRANSIENT_AWS,
    attempts: int = 5,
    base: float = 0.1,
    cap: float = 5.0,
    jitter: str | Strategy = "full",
    deadline: float | Deadline | None = None,
    budget: RetryBudget | _Default | None = _DEFAULT,
    sleep: Callable[[float], Any] | None = None,
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
        deadline: seconds from the first attempt, or a :class:`~sfn_workers.context.Deadline`.
            Inside a ``@task`` the task's deadline always applies too (the earlier one wins).
            A retry whose delay would end past it is not made: the last exception propagates.
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
