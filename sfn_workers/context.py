"""What a task function is handed as ``ctx``: token, Lambda context, time left, heartbeat, logger.

The running invocation's context is also kept in a context variable, so that helpers such as
:func:`sfn_workers.retry` find the Lambda's deadline without the user passing it.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["Deadline", "LambdaContext", "TaskContext", "current_context", "redact_token"]


def redact_token(token: str | None) -> str | None:
    """A task token as logs show it: a short digest to correlate lines, never enough to use it.

    A digest rather than a prefix, because real tokens share long constant prefixes.
    """
    if token is None:
        return None
    import hashlib  # only callback mode logs tokens

    data = token.encode("utf-8", "surrogatepass")
    return f"sha256:{hashlib.sha256(data).hexdigest()[:12]} ({len(token)} chars)"


@runtime_checkable
class LambdaContext(Protocol):
    """The part of the Lambda runtime's context object that sfn-workers reads.

    Any object with these members fits: the runtime's own, Powertools' ``LambdaContext`` or
    :class:`sfn_workers.testing.FakeLambdaContext`.
    """

    @property
    def aws_request_id(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time (``clock()`` seconds) that work must finish by."""

    at: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)


def _no_heartbeat() -> None:
    """Direct mode has no token: a heartbeat has nothing to report to."""


@dataclass(slots=True)
class TaskContext:
    """Handed to a task function that declares a ``ctx`` parameter.

    Attributes:
        token: the task token (callback mode), or None. Never shown by ``repr()``.
        lambda_context: the Lambda context object (None when called outside Lambda).
        logger: the Powertools Logger, already correlated with this invocation.
        deadline: when work must stop (the Lambda timeout less the timeout margin), or None
            outside Lambda; retries never sleep past it.
        execution: the Step Functions execution name, when the payload carries it.
        state: the state name, when the payload carries it.
        send_heartbeat: what :meth:`heartbeat` calls (callback mode sends SendTaskHeartbeat).
    """

    token: str | None = field(repr=False)
    lambda_context: LambdaContext | None
    logger: Logger
    deadline: Deadline | None
    execution: str | None = None
    state: str | None = None
    send_heartbeat: Callable[[], None] = field(default=_no_heartbeat, repr=False)
    on_hand_off: Callable[[], None] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"TaskContext(token={redact_token(self.token)!r}, execution={self.execution!r}, "
            f"state={self.state!r}, request_id={self.request_id!r})"
        )

    @property
    def request_id(self) -> str | None:
        """The Lambda request id, when there is a Lambda context."""
        return getattr(self.lambda_context, "aws_request_id", None)

    def remaining_ms(self) -> int | None:
        """Milliseconds left before the Lambda times out, or None outside Lambda."""
        getter = getattr(self.lambda_context, "get_remaining_time_in_millis", None)
        return int(getter()) if getter is not None else None

    def heartbeat(self) -> None:
        """Send SendTaskHeartbeat now (callback mode); a no-op without a token.

        Raises :class:`sfn_workers.errors.WorkerTimeout` when Step Functions answers that the
        task has already timed out, so the work stops early.
        """
        self.send_heartbeat()

    def hand_off(self) -> str:
        """Take the task token to answer later (a person, another system); returns the raw token.

        The framework then sends nothing when the function returns (it must return None); an
        exception raised afterwards is still reported with SendTaskFailure. Answer with
        :func:`sfn_workers.report_success` / :func:`sfn_workers.report_failure`. Raises
        :class:`~sfn_workers.errors.ConfigurationError` in direct mode (there is no token).
        """
        if self.token is None or self.on_hand_off is None:
            from sfn_workers.errors import ConfigurationError

            raise ConfigurationError(
                "ctx.hand_off() needs a task token: this invocation is in direct mode (the state is not "
                "a .waitForTaskToken integration, or the token is not in the event's token field)"
            )
        self.on_hand_off()
        return self.token


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("sfn_workers_task_context", default=None)


def current_context() -> TaskContext | None:
    """The context of the task invocation running in this thread or task, if any."""
    return _current.get()
