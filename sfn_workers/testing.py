"""Helpers for testing code built on sfn-workers: a Lambda context, a ``TaskContext``, a reset.

* :class:`FakeLambdaContext` stands in for the Lambda runtime's context (what sfn-workers and
  Powertools read), with a remaining time that runs out in real time.
* :func:`task_context` builds the ``ctx`` for calling ``handler.__wrapped__(order, ctx)`` directly.
* :func:`reset` forgets cached boto3 clients and refills the process-wide retry budget, so that one
  test's endpoints and retries never reach the next test. As a pytest plugin
  (``pytest_plugins = ["sfn_workers.testing"]`` in a ``conftest.py``) it runs before every test.

Nothing here is imported by the runtime; the module needs pytest only for the plugin's fixture.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

from sfn_workers.context import Deadline, TaskContext

__all__ = ["FakeLambdaContext", "reset", "sfn_workers_reset", "task_context"]


class FakeLambdaContext:
    """The part of Lambda's context object that sfn-workers and Powertools read.

    ``FakeLambdaContext(0.6)`` is an invocation with 600 ms left, counting down in real time like
    Lambda's, so that the deadline, the callback watchdog and ``ctx.remaining_ms()`` behave as
    deployed. Powertools' ``@logger.inject_lambda_context`` accepts it.
    """

    function_version = "$LATEST"

    def __init__(
        self,
        seconds: float = 30.0,
        request_id: str | None = None,
        *,
        function_name: str = "sample-function",
        memory_limit_in_mb: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"
        self._clock = clock
        self._deadline = clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))

    def __repr__(self) -> str:
        return f"FakeLambdaContext({self.get_remaining_time_in_millis()} ms left, {self.aws_request_id})"


def task_context(
    token: str | None = None,
    *,
    lambda_context: FakeLambdaContext | None = None,
    execution: str | None = None,
    state: str | None = None,
    heartbeat: Callable[[], None] | None = None,
    seconds: float | None = None,
) -> TaskContext:
    """A ``TaskContext`` for calling a task function directly: ``handler.__wrapped__(order, ctx)``.

    ``seconds`` sets a deadline (``ctx.deadline``) that many seconds away; ``heartbeat`` is what
    ``ctx.heartbeat()`` calls (a recorder, or one raising ``WorkerTimeout`` to test that path).
    """
    from sfn_workers import _log

    deadline = None if seconds is None else Deadline.after(seconds)
    ctx = TaskContext(token, lambda_context, _log.get_logger(), deadline, execution, state)
    if heartbeat is not None:
        ctx.send_heartbeat = heartbeat
    return ctx


def reset() -> None:
    """Forget cached boto3 clients and refill the retry budget (between tests)."""
    from sfn_workers._aws import default_clients
    from sfn_workers.retries import DEFAULT_BUDGET

    default_clients().clear()
    DEFAULT_BUDGET.refill()


try:
    import pytest
except ImportError:  # pragma: no cover - the plugin needs pytest; the helpers above do not
    pass
else:

    @pytest.fixture(autouse=True)
    def sfn_workers_reset() -> Iterator[None]:
        """Autouse with ``pytest_plugins = ["sfn_workers.testing"]``: every test starts afresh."""
        reset()
        yield
        reset()
