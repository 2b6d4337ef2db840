"""The task-token API backend protocol, and the API error every local backend raises.

``TaskTokenBackend`` is what answers SendTaskSuccess/Failure/Heartbeat: the interpreter's token
broker (``asl.TokenBroker``) implements it, and the HTTP endpoints (``sfn_endpoint``, ``serve``)
speak AWS JSON 1.0 on top of it. A backend refuses a call by raising :class:`ApiError` with the
real API's error code. This module imports nothing, so the interpreter can depend on it without
depending on the API layer. (It was ``sfn_workers.local.tokens``, a near-twin of ``asl/tokens``.)
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ApiError", "TaskTokenBackend"]


class ApiError(Exception):
    """An error answer of the Step Functions API: ``code`` is what boto3 shows as Error.Code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class TaskTokenBackend(Protocol):
    """Closes or extends the task a token stands for.

    Raise ``ApiError("InvalidToken", ...)`` for a token that was never issued,
    ``ApiError("TaskDoesNotExist", ...)`` or ``ApiError("TaskTimedOut", ...)`` for one whose task
    is already closed (timed out, or its execution ended).
    """

    def send_task_success(self, token: str, output: str) -> None: ...

    def send_task_failure(self, token: str, error: str | None, cause: str | None) -> None: ...

    def send_task_heartbeat(self, token: str) -> None: ...
