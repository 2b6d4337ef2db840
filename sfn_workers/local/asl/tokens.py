"""Task tokens of ``.waitForTaskToken`` tasks: issued by the interpreter, closed by SendTask* calls.

One :class:`TokenBroker` serves a whole runner (every execution); the SendTask* HTTP endpoint calls
it through :class:`sfn_workers.local.token_backend.TaskTokenBackend`. A token is answered once; after its
task ends (answered, timed out, execution stopped) further calls get ``TaskTimedOut`` (timed out) or
``TaskDoesNotExist``; a token never issued gets ``InvalidToken``.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from ..token_backend import ApiError

__all__ = ["TokenBroker", "TokenTicket"]


@dataclass(slots=True, eq=False)  # identity-hashed: executions keep open tickets in a set
class TokenTicket:
    """One issued token and what became of it."""

    token: str
    wake: Any  # a callable: tells the waiting execution's clock to re-check
    outcome: str | None = None  # "success" | "failure"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    heartbeats: int = 0
    closed: str | None = None  # "timed_out" | "done"
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> bool:
        return self.outcome is not None


class TokenBroker:
    """Issues task tokens and routes SendTaskSuccess/Failure/Heartbeat to the waiting execution."""

    def __init__(self, remember_closed: int = 10_000) -> None:
        self._tickets: dict[str, TokenTicket] = {}
        self._closed: collections.deque[str] = collections.deque()
        self._remember = remember_closed
        self._lock = threading.Lock()

    def issue(self, wake: Any = None) -> TokenTicket:
        """A fresh token; ``wake()`` is called whenever it is answered or heartbeated."""
        raw = secrets.token_bytes(96)
        token = "AQC" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        ticket = TokenTicket(token, wake or (lambda: None))
        with self._lock:
            self._tickets[token] = ticket
        return ticket

    def close(self, ticket: TokenTicket, reason: str = "done") -> None:
        """The task ended without (further) use of its token: later calls are refused."""
        with ticket.lock:
            if ticket.closed is not None:
                return
            ticket.closed = reason
        # Closed tokens are remembered (to answer TaskTimedOut/TaskDoesNotExist) up to a bound, so a
        # long-running endpoint does not grow forever; older ones then answer InvalidToken.
        with self._lock:
            self._closed.append(ticket.token)
            while len(self._closed) > self._remember:
                self._tickets.pop(self._closed.popleft(), None)

    def _open(self, token: str) -> TokenTicket:
        if not isinstance(token, str) or not token:
            raise ApiError("InvalidToken", "Invalid token")
        with self._lock:
            ticket = self._tickets.get(token)
        if ticket is None:
            raise ApiError("InvalidToken", "Invalid token")
        return ticket

    @staticmethod
    def _refuse_closed(ticket: TokenTicket) -> None:
        if ticket.closed == "timed_out":
            raise ApiError("TaskTimedOut", "Task Timed Out")
        if ticket.closed is not None or ticket.answered:
            raise ApiError("TaskDoesNotExist", "Task does not exist anymore")

    def send_task_success(self, token: str, output: str) -> None:
        ticket = self._open(token)
        try:
            value = json.loads(output)
        except (TypeError, ValueError) as exc:
            raise ApiError("InvalidOutput", "Invalid Output: the output is not valid JSON") from exc
        with ticket.lock:
            self._refuse_closed(ticket)
            ticket.outcome, ticket.output = "success", value
        ticket.wake()

    def send_task_failure(self, token: str, error: str | None, cause: str | None) -> None:
        ticket = self._open(token)
        with ticket.lock:
            self._refuse_closed(ticket)
            ticket.outcome, ticket.error, ticket.cause = "failure", error, cause
        ticket.wake()

    def send_task_heartbeat(self, token: str) -> None:
        ticket = self._open(token)
        with ticket.lock:
            self._refuse_closed(ticket)
            ticket.heartbeats += 1
        ticket.wake()

    def forget_closed(self) -> int:
        """Drop closed tickets older than now (memory bound for long-running servers); returns how many.

        A dropped token then answers ``InvalidToken`` rather than ``TaskDoesNotExist``.
        """
        with self._lock:
            dead = [t for t, k in self._tickets.items() if k.closed is not None]
            for t in dead:
                del self._tickets[t]
        return len(dead)
