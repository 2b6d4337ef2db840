"""retry(): attempts, propagation, decorator forms, deadline, Retry-After, async, the @task deadline.

No real time passes: every test injects ``sleep`` (recording), ``clock`` and ``rng``.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from sfn_workers import RetryBudget, RetryPolicy, retry, task
from sfn_workers.context import Deadline
from sfn_workers.errors import ConfigurationError, RetryBudgetExhausted
from sfn_workers.testing import FakeLambdaContext


def client_error(code: str, status: int = 400, headers: dict[str, str] | None = None) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {
                "RequestId": "r-1",
                "HostId": "",
                "HTTPStatusCode": status,
                "HTTPHeaders": headers or {},
                "RetryAttempts": 0,
            },
        },
        "PutItem",
    )


class FakeClock:
    """Monotonic seconds that only move when the code under test sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with the given errors in order, then returns ``"done"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def quiet(**options: Any) -> RetryPolicy:
    clock = options.pop("clock", None) or FakeClock()
    options.setdefault("budget", RetryBudget())
    options.setdefault("rng", random.Random(7))
    return retry(sleep=clock.sleep, clock=clock, observer=None, **options)


def test_transient_errors_are_retried_until_success() -> None:
    # GIVEN a call throttled twice
    fn = Flaky(client_error("ThrottlingException"), client_error("InternalError", 500))
    clock = FakeClock()
    # WHEN it is called through the default policy
    result = quiet(clock=clock).call(fn)
    # THEN it succeeds on the third call after two sleeps
    assert result == "done"
    assert fn.calls == 3
    assert len(clock.slept) == 2


def test_attempts_count_calls_and_the_last_error_propagates_unchanged() -> None:
    errors = [client_error("ThrottlingException") for _ in range(10)]
    fn = Flaky(*errors)
    with pytest.raises(ClientError) as caught:
        quiet(attempts=4).call(fn)
    assert fn.calls == 4
    assert caught.value is errors[3]  # the very last error object, not a wrapper


def test_non_retryable_errors_propagate_at_once() -> None:
    denied = client_error("AccessDeniedException", 403)
    fn = Flaky(denied)
    with pytest.raises(ClientError) as caught:
        quiet().call(fn)
    assert caught.value is denied
    assert fn.calls == 1


def test_on_takes_classes_predicates_and_mixtures() -> None:
    class Busy(Exception):
        pass

    fn = Flaky(Busy(), KeyError("k"), ValueError("retry me"))
    policy = quiet(on=(c for c in [Busy, KeyError, lambda exc: "retry me" in str(exc)]))  # any iterable
    assert policy.call(fn) == "done"
    assert fn.calls == 4

    other = Flaky(TypeError("no"))
    with pytest.raises(TypeError):
        policy.call(other)
    assert other.calls == 1


def test_bare_and_configured_decorators_keep_the_function() -> None:
    @retry
    def plain(x: int) -> int:
        """Doubles."""
        return 2 * x

    clock = FakeClock()
    fn = Flaky(client_error("SlowDown", 503))

    @retry(sleep=clock.sleep, clock=clock, budget=None, observer=None)
    def configured(x: int, *, y: int) -> str:
        return f"{fn()}:{x}:{y}"

    assert plain(4) == 8
    assert plain.__name__ == "plain" and plain.__doc__ == "Doubles."
    assert configured(1, y=2) == "done:1:2"
    assert fn.calls == 2


def test_deadline_in_seconds_is_never_overrun() -> None:
    # GIVEN a call that always throttles and a 1 s deadline with large delays
    clock = FakeClock()
    fn = Flaky(*[client_error("Throttling") for _ in range(100)])
    start = clock.now
    with pytest.raises(ClientError):
        quiet(clock=clock, attempts=100, base=0.3, cap=10.0, jitter="none", deadline=1.0).call(fn)
    # THEN every sleep ended before the deadline: 0.3 + 0.6 = 0.9 <= 1.0, the next (1.2) would not fit
    assert clock.slept == pytest.approx([0.3, 0.6])
    assert clock.now - start <= 1.0
    assert fn.calls == 3


def test_deadline_object_is_honoured() -> None:
    clock = FakeClock()
    deadline = Deadline(clock.now + 0.5, clock)
    fn = Flaky(*[client_error("Throttling") for _ in range(100)])
    with pytest.raises(ClientError):
        quiet(clock=clock, attempts=100, base=0.2, jitter="none", deadline=deadline).call(fn)
    assert clock.now <= deadline.at
    assert clock.slept == pytest.approx([0.2])


def test_retry_after_is_honoured_but_never_past_cap_or_deadline() -> None:
    clock = FakeClock()
    fn = Flaky(client_error("SlowDown", 503, {"retry-after": "2"}))
    quiet(clock=clock, jitter="none", base=0.01, cap=5.0).call(fn)
    assert clock.slept == [2.0]

    clock = FakeClock()
    fn = Flaky(client_error("SlowDown", 503, {"Retry-After": "120"}))
    quiet(clock=clock, jitter="none", base=0.01, cap=5.0).call(fn)
    assert clock.slept == [5.0]  # the cap wins

    clock = FakeClock()
    asked = client_error("SlowDown", 503, {"retry-after": "3"})
    fn = Flaky(asked)
    with pytest.raises(ClientError) as caught:
        quiet(clock=clock, jitter="none", base=0.01, deadline=2.0).call(fn)
    assert caught.value is asked  # cannot wait as asked within the deadline: stop
    assert clock.slept == []


def test_budget_refusal_raises_retry_budget_exhausted_chained() -> None:
    budget = RetryBudget(capacity=5, retry_cost=5)
    first, second = client_error("Throttling"), client_error("Throttling")
    fn = Flaky(first, second)
    with pytest.raises(RetryBudgetExhausted) as caught:
        quiet(budget=budget).call(fn)
    assert caught.value.__cause__ is second
    assert fn.calls == 2
    assert budget.tokens == 0


def test_async_functions_are_retried_with_async_sleep() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    @retry(sleep=fake_sleep, budget=None, observer=None, rng=random.Random(1))
    async def fetch(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise client_error("ProvisionedThroughputExceededException")
        return key.upper()

    assert asyncio.run(fetch("abc")) == "ABC"
    assert calls == 3 and len(slept) == 2

    fn_calls = 0

    async def failing() -> None:
        nonlocal fn_calls
        fn_calls += 1
        raise client_error("ThrottlingException")

    policy = retry(attempts=3, sleep=fake_sleep, budget=None, observer=None)
    with pytest.raises(ClientError):
        asyncio.run(policy.acall(failing))
    assert fn_calls == 3


def test_each_retry_is_reported_with_attempt_delay_and_reason() -> None:
    events: list[Any] = []
    clock = FakeClock()
    fn = Flaky(client_error("TooManyRequestsException", 429), client_error("X", 502))
    retry(sleep=clock.sleep, clock=clock, budget=None, jitter="none", base=0.5, observer=events.append).call(fn)
    assert [(e.outcome, e.attempt, e.delay, e.reason) for e in events] == [
        ("retry", 1, 0.5, "throttling:TooManyRequestsException"),
        ("retry", 2, 1.0, "server:X"),
    ]


def test_refusals_are_reported_too() -> None:
    events: list[Any] = []
    clock = FakeClock()
    with pytest.raises(ClientError):
        retry(
            sleep=clock.sleep, clock=clock, budget=None, jitter="none", base=2.0, deadline=1.0, observer=events.append
        ).call(Flaky(client_error("Throttling")))
    with pytest.raises(RetryBudgetExhausted):
        retry(sleep=clock.sleep, clock=clock, budget=RetryBudget(0), observer=events.append).call(
            Flaky(client_error("Throttling"))
        )
    assert [(e.outcome, e.attempt) for e in events] == [("deadline", 1), ("budget", 1)]


def test_default_reporting_logs_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process logger and metrics writer are swapped for recorders: Powertools binds its handler
    # to the stdout of the moment, which pytest's capture would close under other tests.
    from sfn_workers import _log, _metrics

    lines: list[tuple[str, dict[str, Any]]] = []
    counted: list[tuple[str, dict[str, str]]] = []

    class Recorder:
        def warning(self, message: str, extra: dict[str, Any]) -> None:
            lines.append((message, extra))

    monkeypatch.setattr(_log, "get_logger", lambda: Recorder())
    monkeypatch.setattr(_metrics, "count", lambda name, **dims: counted.append((name, dims)))
    clock = FakeClock()
    retry(sleep=clock.sleep, clock=clock, budget=None, jitter="none", base=0.25).call(
        Flaky(client_error("SlowDown", 503))
    )
    assert lines == [
        (
            "retrying downstream call",
            {"function": "Flaky", "attempt": 1, "delay_s": 0.25, "reason": "throttling:SlowDown"},
        )
    ]
    assert counted == [("Retries", {"reason": "throttling"})]


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": 0},
        {"attempts": 1.5},
        {"base": -1},
        {"jitter": "sideways"},
        {"deadline": "soon"},
        {"deadline": float("nan")},
        {"deadline": float("inf")},
        {"deadline": -1.0},
        {"cap": float("nan")},
        {"on": 3},
        {"on": int},
        {"on": [ValueError, "KeyError"]},
        {"budget": 500},
    ],
)
def test_bad_options_fail_at_decoration_time(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        retry(**options)


def test_a_task_deadline_flows_into_retry_without_being_passed() -> None:
    # GIVEN a task whose downstream call always throttles, retried with 1 s delays
    slept: list[float] = []
    calls = 0

    @retry(attempts=5, base=1.0, jitter="none", sleep=slept.append, budget=None, observer=None)
    def downstream() -> None:
        nonlocal calls
        calls += 1
        raise client_error("ThrottlingException")

    @task(offload=False, timeout_margin_ms=1500)
    def handler(payload: dict[str, Any]) -> dict[str, Any]:
        downstream()
        return payload

    # WHEN the Lambda has 1.2 s left (0.9 s after the margin, shrunk to a quarter): no 1 s sleep fits
    with pytest.raises(ClientError):
        handler({"orderId": "o-1"}, FakeLambdaContext(1.2))
    assert calls == 1 and slept == []

    # WHEN it has a minute left, the same policy retries all the way
    calls = 0
    with pytest.raises(ClientError):
        handler({"orderId": "o-1"}, FakeLambdaContext(60.0))
    assert calls == 5 and slept == [1.0, 2.0, 4.0, 5.0]  # the last one capped at 5 s


@settings(max_examples=200, deadline=None)
@given(
    jitter=st.sampled_from(["full", "equal", "decorrelated", "none"]),
    base=st.floats(0.0, 3.0),
    cap=st.floats(0.0, 30.0),
    attempts=st.integers(1, 40),
    deadline=st.floats(0.0, 60.0),
    call_seconds=st.floats(0.0, 2.0),
    retry_after_header=st.one_of(st.none(), st.floats(0.0, 50.0)),
    seed=st.integers(0, 2**32),
)
def test_no_sleep_ever_ends_past_the_deadline(
    jitter: str,
    base: float,
    cap: float,
    attempts: int,
    deadline: float,
    call_seconds: float,
    retry_after_header: float | None,
    seed: int,
) -> None:
    # GIVEN a dependency that always throttles, takes call_seconds per call, maybe with Retry-After
    clock = FakeClock()
    start = clock.now
    sleeps: list[tuple[float, float]] = []

    def sleep(seconds: float) -> None:
        sleeps.append((clock.now, seconds))
        clock.sleep(seconds)

    headers = {} if retry_after_header is None else {"retry-after": repr(retry_after_header)}
    calls = 0

    def dependency() -> None:
        nonlocal calls
        calls += 1
        clock.now += call_seconds
        raise client_error("ThrottlingException", 400, headers)

    policy = retry(
        attempts=attempts,
        base=base,
        cap=cap,
        jitter=jitter,
        deadline=deadline,
        budget=None,
        sleep=sleep,
        clock=clock,
        rng=random.Random(seed),
        observer=None,
    )
    # WHEN it is called
    with pytest.raises(ClientError):
        policy.call(dependency)
    # THEN every sleep ended by the deadline, none was longer than cap, attempts were respected
    for began, seconds in sleeps:
        assert began + seconds <= start + deadline + 1e-9
        assert seconds <= cap
        if retry_after_header is not None:
            assert seconds >= min(cap, retry_after_header) - 1e-9
    assert calls <= attempts
    assert len(sleeps) == calls - 1


def test_async_callable_objects_and_methods_are_retried() -> None:
    slept: list[float] = []

    class Client:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self) -> str:
            self.calls += 1
            if self.calls < 2:
                raise client_error("SlowDown", 503)
            return "async-object"

        @retry(budget=None, observer=None, sleep=slept.append)
        def method(self, x: int) -> int:
            self.calls += 1
            if self.calls < 2:
                raise client_error("SlowDown", 503)
            return x

    client = Client()
    wrapped = retry(budget=None, observer=None, sleep=slept.append)(client)
    assert asyncio.run(wrapped()) == "async-object"
    assert client.calls == 2
    other = Client()
    assert other.method(7) == 7
    assert other.calls == 2
    assert len(slept) == 2


def test_a_nan_deadline_is_refused_with_a_message_naming_it() -> None:
    # nan compares false with everything: silently, it used to switch the deadline off
    with pytest.raises(ConfigurationError, match=r"deadline=nan must be a finite number of seconds"):
        retry(deadline=float("nan"))


def test_a_retry_after_date_no_clock_can_reach_still_retries_and_keeps_the_error() -> None:
    # GIVEN a throttle whose Retry-After is a date in the year 999,999,999,999 (OverflowError to compute)
    far = client_error("ThrottlingException", 400, {"retry-after": "Fri, 31 Dec 999999999999 23:59:59 GMT"})
    flaky = Flaky(far)
    # WHEN called with retries
    result = quiet(attempts=3).call(flaky)
    # THEN the header is ignored, not raised: the throttle was retried like any other
    assert result == "done" and flaky.calls == 2
    # AND when attempts run out the caller sees the throttle itself
    with pytest.raises(ClientError) as caught:
        quiet(attempts=1).call(Flaky(far))
    assert caught.value is far


def test_an_observer_that_fails_does_not_replace_the_error() -> None:
    def broken(event: object) -> None:
        raise RuntimeError("observer bug")

    error = client_error("ThrottlingException")
    with pytest.raises(ClientError) as caught:
        retry(attempts=2, sleep=lambda _: None, observer=broken, budget=None).call(Flaky(error, error))
    assert caught.value is error


def test_a_budget_refusal_is_counted_for_the_retry_budget_alarm() -> None:
    # GIVEN an invocation's metrics recorder and an empty retry budget
    from sfn_workers import _metrics

    lines: list[str] = []
    clock = FakeClock()
    with pytest.raises(RetryBudgetExhausted), _metrics.invocation(_metrics.Recorder(write=lines.append)):
        retry(sleep=clock.sleep, clock=clock, budget=RetryBudget(0)).call(Flaky(client_error("Throttling")))
    # THEN the invocation's document counts the refusal and the metric the alarm watches
    [document] = [json.loads(line) for line in lines]
    assert document["RetriesRefused"] == 1 and document["RetryBudgetExhausted"] == 1
    assert document["details"]["RetriesRefused"] == {"cause": {"budget": 1}}
