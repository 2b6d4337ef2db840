"""sfn_workers.testing: what users test their tasks with works, and works more than once per process."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from sfn_workers import TaskContext, WorkerTimeout, task
from sfn_workers.local.sfn_endpoint import MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext, reset, task_context


class Order(BaseModel):
    orderId: str


class Checked(BaseModel):
    orderId: str
    ok: bool


@task(offload=False)
def check(order: Order, ctx: TaskContext) -> Checked:
    """Module level, like a user's handler: built once, with the process-wide clients."""
    ctx.heartbeat()
    return Checked(orderId=order.orderId, ok=ctx.token is not None)


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_the_callback_recipe_works_again_with_a_new_endpoint(round_: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The docs' recipe: a strict endpoint per test, reached through AWS_ENDPOINT_URL_SFN. The module's
    # handler keeps its clients across tests; each round must still reach its own endpoint.
    tokens = MemoryTokens()
    with SfnEndpoint(tokens) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", endpoint.url)
        token = tokens.issue()
        assert check({"taskToken": token, "orderId": f"o-{round_}"}, FakeLambdaContext()) is None
        assert tokens.outcome(token).json() == {"orderId": f"o-{round_}", "ok": True}
        assert tokens.heartbeats[token] == 1


def test_task_context_calls_the_plain_function() -> None:
    beats: list[str] = []
    ctx = task_context(token="t-1", execution="e-1", state="Check", heartbeat=lambda: beats.append("beat"))
    assert check.__wrapped__(Order(orderId="o-1"), ctx) == Checked(orderId="o-1", ok=True)
    assert beats == ["beat"]
    assert (ctx.execution, ctx.state, ctx.request_id, ctx.deadline) == ("e-1", "Check", None, None)


def test_task_context_can_test_the_timeout_path() -> None:
    def closed() -> None:
        raise WorkerTimeout("the task is over")

    with pytest.raises(WorkerTimeout):
        check.__wrapped__(Order(orderId="o-2"), task_context(token="t-2", heartbeat=closed))
    ctx = task_context(seconds=10, lambda_context=FakeLambdaContext(20, request_id="r-1"))
    assert ctx.deadline is not None and 9 < ctx.deadline.remaining() <= 10
    assert ctx.request_id == "r-1" and 19_000 < (ctx.remaining_ms() or 0) <= 20_000


def test_reset_refills_the_retry_budget() -> None:
    from sfn_workers.retries import DEFAULT_BUDGET

    assert DEFAULT_BUDGET.acquire(DEFAULT_BUDGET.tokens)
    assert DEFAULT_BUDGET.tokens == 0
    reset()
    assert DEFAULT_BUDGET.tokens == DEFAULT_BUDGET.capacity


def test_fake_lambda_context_counts_down() -> None:
    now = [100.0]
    context = FakeLambdaContext(2.0, clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 2000
    now[0] += 1.5
    assert context.get_remaining_time_in_millis() == 500
    now[0] += 5
    assert context.get_remaining_time_in_millis() == 0
