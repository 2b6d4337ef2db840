"""RetryBudget: retries drain it, successes refill it, an empty one stops retries; thread-safe."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from sfn_workers import RetryBudget, RetryPolicy, retry
from sfn_workers.errors import RetryBudgetExhausted
from sfn_workers.retries import DEFAULT_BUDGET


def throttled() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "slow down"},
            "ResponseMetadata": {
                "RequestId": "r-1",
                "HostId": "",
                "HTTPStatusCode": 400,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        "Query",
    )


def always_throttled() -> None:
    raise throttled()


def policy(budget: RetryBudget | None, attempts: int = 5) -> RetryPolicy:
    return retry(attempts=attempts, budget=budget, sleep=lambda _: None, observer=None)


def test_a_hard_down_dependency_drains_the_budget_then_gets_one_call_per_request() -> None:
    # GIVEN a fresh budget (500 tokens, 5 per retry) and a dependency that always throttles
    budget = RetryBudget()
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise throttled()

    # WHEN 25 requests each try 5 times: 25 * 4 = 100 retries = 500 tokens
    for _ in range(25):
        with pytest.raises(ClientError):
            policy(budget).call(down)
    assert budget.tokens == 0
    assert calls == 125
    # THEN each further request makes exactly one call and fails fast with RetryBudgetExhausted
    calls = 0
    for _ in range(50):
        with pytest.raises(RetryBudgetExhausted) as caught:
            policy(budget).call(down)
        assert isinstance(caught.value.__cause__, ClientError)
    assert calls == 50


def test_successes_refill_the_budget() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5)
    with pytest.raises(ClientError):
        policy(budget).call(always_throttled)  # 4 retries: 20 tokens
    assert budget.tokens == 0
    # a success without retries gives back success_refill (1)
    for _ in range(10):
        policy(budget).call(lambda: "ok")
    assert budget.tokens == 10
    # a success after a retry gives back what its last retry took
    outcomes = iter([throttled(), None])
    seen: list[int] = []

    def once_throttled() -> str:
        seen.append(budget.tokens)
        error = next(outcomes)
        if error is not None:
            raise error
        return "ok"

    assert policy(budget).call(once_throttled) == "ok"
    assert seen == [10, 5]  # the retry took 5...
    assert budget.tokens == 10  # ...and the success gave them back
    # never above capacity
    for _ in range(100):
        policy(budget).call(lambda: "ok")
    assert budget.tokens == 20


def test_timeouts_drain_twice_as_fast() -> None:
    budget = RetryBudget(capacity=100)

    def timing_out() -> None:
        raise ReadTimeoutError(endpoint_url="https://dynamodb")

    with pytest.raises(ReadTimeoutError):
        policy(budget, attempts=3).call(timing_out)
    assert budget.tokens == 80  # 2 retries x 10


def test_non_retryable_errors_do_not_touch_the_budget() -> None:
    budget = RetryBudget(capacity=10)
    with pytest.raises(ValueError):
        policy(budget).call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert budget.tokens == 10


def test_policies_share_the_process_wide_budget_by_default() -> None:
    a, b = retry(), retry(attempts=2)
    assert a.resolved_budget() is DEFAULT_BUDGET is b.resolved_budget()
    assert retry(budget=None).resolved_budget() is None


def test_the_budget_is_thread_safe() -> None:
    # GIVEN 8 threads hammering one budget with acquire/release pairs and lone acquires
    budget = RetryBudget(capacity=10_000, retry_cost=1)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(5_000):
            if budget.acquire(1):
                budget.release(1)
        for _ in range(1_000):
            budget.acquire(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly the lone acquires are missing: no update was lost
    assert budget.tokens == 10_000 - 8 * 1_000


def test_an_empty_budget_refuses_and_refill_restores_it() -> None:
    budget = RetryBudget(capacity=5)
    assert budget.acquire(5) and not budget.acquire(1)
    budget.refill()
    assert budget.tokens == 5
    with pytest.raises(Exception, match="must not be negative"):
        RetryBudget(capacity=-1)
