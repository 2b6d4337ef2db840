"""A local Step Functions API endpoint speaking AWS JSON 1.0, strict about the task-token calls.

boto3's ``stepfunctions`` client reaches it through ``AWS_ENDPOINT_URL_SFN``. Out of the box it
answers SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat over a
:class:`~sfn_workers.local.token_backend.TaskTokenBackend`, enforcing the limits and error codes of the
real API (moto does not), so that a worker that would be rejected by AWS is rejected here too:

===================  ==========================================================================
SendTaskSuccess      taskToken 1..2048 chars; output <= 262,144 UTF-8 bytes (ValidationException),
                     valid JSON (InvalidOutput)
SendTaskFailure      taskToken 1..2048; error <= 256 chars; cause <= 32,768 chars (ValidationException)
SendTaskHeartbeat    taskToken 1..2048
===================  ==========================================================================

The backend answers InvalidToken / TaskDoesNotExist / TaskTimedOut by raising
:class:`~sfn_workers.local.token_backend.ApiError`. More actions are added with
:meth:`SfnEndpoint.register`. The protocol (:mod:`.api.protocol`) and the HTTP server
(:mod:`.api.http`) are the ones ``sfn-workers serve`` uses.

For tests, :meth:`SfnEndpoint.inject` scripts faults per action (throttling, 5xx, refusal, a dropped
connection, delays), and :class:`MemoryTokens` is a strict in-memory backend that records every
accepted outcome and every refused call, so a test can assert "exactly one outcome per token".
A bad request (malformed JSON, unknown action, missing or mistyped fields) gets the AWS error answer
botocore expects; nothing a client sends crashes the server.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from sfn_workers._limits import CAUSE_MAX_CHARS, ERROR_MAX_CHARS, PAYLOAD_MAX_BYTES, TASK_TOKEN_MAX_CHARS
from sfn_workers.local.api.http import ApiHttpServer
from sfn_workers.local.api.protocol import DROP, ApiRequest, DropConnection, Handler, dispatch
from sfn_workers.local.api.task_tokens import task_token_actions
from sfn_workers.local.token_backend import ApiError, TaskTokenBackend

__all__ = [
    "CAUSE_LIMIT",
    "ERROR_LIMIT",
    "OUTPUT_LIMIT_BYTES",
    "TOKEN_LIMIT",
    "ApiRequest",  # re-exported from api.protocol, where it lives
    "Call",
    "Fault",
    "MemoryTokens",
    "Outcome",
    "SfnEndpoint",
]

# The limits of the task-token calls, under the names this module has always exported (see _limits).
OUTPUT_LIMIT_BYTES = PAYLOAD_MAX_BYTES
ERROR_LIMIT = ERROR_MAX_CHARS
CAUSE_LIMIT = CAUSE_MAX_CHARS
TOKEN_LIMIT = TASK_TOKEN_MAX_CHARS


# -- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour of the endpoint for one request.

    ``kind``: ``"error"`` answers ``code``/``status`` without calling the backend; ``"drop"`` closes
    the connection without answering; ``"delay"`` waits ``seconds`` and then serves the request.
    """

    kind: Literal["error", "drop", "delay"]
    code: str = ""
    status: int = 400
    message: str = ""
    seconds: float = 0.0

    @classmethod
    def throttle(cls) -> Fault:
        """What Step Functions answers when the account's API rate is exceeded."""
        return cls("error", "ThrottlingException", 400, "Rate exceeded")

    @classmethod
    def internal_failure(cls) -> Fault:
        """A 500 from the service."""
        return cls("error", "InternalFailure", 500, "The request processing has failed because of an unknown error.")

    @classmethod
    def unavailable(cls) -> Fault:
        """A 503 from the service."""
        return cls("error", "ServiceUnavailable", 503, "Service is unavailable.")

    @classmethod
    def refuse(cls, code: str = "AccessDeniedException", message: str = "not authorized") -> Fault:
        """A permanent refusal (retrying will not help)."""
        return cls("error", code, 400, message)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without an answer (botocore sees a connection error)."""
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, ``seconds`` late."""
        return cls("delay", seconds=seconds)


@dataclass(slots=True)
class _Script:
    fault: Fault
    remaining: int | None  # None: every request until cleared
    when: Callable[[dict[str, Any]], bool] | None = None  # only requests it accepts


@dataclass(frozen=True, slots=True)
class Call:
    """One request the endpoint received, and how it was answered."""

    action: str
    request: Any
    status: int
    code: str | None = None  # the error code, None for a 200


# -- the strict in-memory backend --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """An accepted SendTaskSuccess (``kind="success"``) or SendTaskFailure (``kind="failure"``)."""

    kind: Literal["success", "failure"]
    output: str | None = None
    error: str | None = None
    cause: str | None = None

    def json(self) -> Any:
        """The success output parsed, for assertions."""
        return None if self.output is None else json.loads(self.output)


class MemoryTokens:
    """A strict in-memory :class:`TaskTokenBackend`: it behaves like Step Functions and remembers.

    A token must be issued (``issue()``) to be known; an unknown token answers InvalidToken. The
    first SendTaskSuccess/Failure closes the task; any later call for it answers TaskTimedOut
    ("Provided task does not exist anymore"), as AWS does. ``close(token)`` closes a task as a
    timeout would (or with ``code="TaskDoesNotExist"``, as an ended execution would).

    ``outcomes[token]`` lists the accepted outcomes (a correct worker leaves exactly one),
    ``heartbeats[token]`` counts accepted heartbeats, and ``refused`` lists every refused call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[str] = set()
        self._closed: dict[str, str] = {}
        self.outcomes: dict[str, list[Outcome]] = {}
        self.heartbeats: dict[str, int] = {}
        self.refused: list[tuple[str, str, str]] = []  # (action, token, code)
        self._on_heartbeat: dict[str, Callable[[], None]] = {}

    def issue(self, token: str | None = None) -> str:
        """Open a task and return its token (a random 600-char one, like the real ones, by default)."""
        token = token if token is not None else "AQCEAAAAKgAAAAMAAAAA" + secrets.token_urlsafe(435)[:580]
        with self._lock:
            self._open.add(token)
            self.outcomes.setdefault(token, [])
            self.heartbeats.setdefault(token, 0)
        return token

    def close(self, token: str, code: Literal["TaskTimedOut", "TaskDoesNotExist"] = "TaskTimedOut") -> None:
        """Close an issued task without an outcome (its timeout passed, or its execution ended)."""
        with self._lock:
            self._open.discard(token)
            self._closed[token] = code

    def is_open(self, token: str) -> bool:
        with self._lock:
            return token in self._open

    def on_heartbeat(self, token: str, action: Callable[[], None]) -> None:
        """Run ``action`` after each accepted heartbeat of ``token`` (e.g. to close it)."""
        self._on_heartbeat[token] = action

    def outcome(self, token: str) -> Outcome:
        """The one accepted outcome of ``token``; AssertionError if there is not exactly one."""
        found = self.outcomes.get(token, [])
        if len(found) != 1:
            raise AssertionError(f"expected exactly one outcome, got {len(found)}: {found!r}")
        return found[0]

    # TaskTokenBackend

    def send_task_success(self, token: str, output: str) -> None:
        self._finish(token, "SendTaskSuccess", Outcome("success", output=output))

    def send_task_failure(self, token: str, error: str | None, cause: str | None) -> None:
        self._finish(token, "SendTaskFailure", Outcome("failure", error=error, cause=cause))

    def send_task_heartbeat(self, token: str) -> None:
        with self._lock:
            self._check(token, "SendTaskHeartbeat")
            self.heartbeats[token] += 1
        hook = self._on_heartbeat.get(token)
        if hook is not None:
            hook()

    def _finish(self, token: str, action: str, outcome: Outcome) -> None:
        with self._lock:
            self._check(token, action)
            self._open.discard(token)
            self._closed[token] = "TaskTimedOut"
            self.outcomes[token].append(outcome)

    def _check(self, token: str, action: str) -> None:
        if token in self._open:
            return
        code = self._closed.get(token)
        if code is None:
            self.refused.append((action, token, "InvalidToken"))
            raise ApiError("InvalidToken", "Invalid Token: 'Unable to parse task token'")
        self.refused.append((action, token, code))
        if code == "TaskDoesNotExist":
            raise ApiError("TaskDoesNotExist", "Task does not exist anymore")
        raise ApiError("TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'")


# -- the server --------------------------------------------------------------------------------


class SfnEndpoint:
    """A threaded HTTP server answering Step Functions API calls (AWS JSON 1.0) on 127.0.0.1.

    Use it as a context manager, or ``start()``/``stop()``; ``url`` is what ``AWS_ENDPOINT_URL_SFN``
    should be set to. ``calls`` journals every request and its answer (token values included: it
    is a test tool, never logged); ``journal=False`` turns it off for a long-running server.
    The HTTP server is :class:`~sfn_workers.local.api.http.ApiHttpServer` (backlog, request
    deadline, Host check); this class adds the scripted faults and the journal.
    """

    def __init__(
        self, backend: TaskTokenBackend, host: str = "127.0.0.1", port: int = 0, *, journal: bool = True
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.host = host
        self.port = port
        self._handlers: dict[str, Handler] = task_token_actions(backend)
        self._faults: dict[str, list[_Script]] = {}
        self._lock = threading.Lock()
        self._http: ApiHttpServer | None = None
        self._stopping = threading.Event()
        self.calls: list[Call] = []

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the endpoint is not started")
        return self._http.url

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns once the port is listening."""
        if self._http is not None:
            return
        self._stopping.clear()
        self._http = ApiHttpServer(self._dispatch, self.host, self.port)
        self._http.start()

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds, close the rest."""
        http = self._http
        if http is None:
            return
        self._stopping.set()  # wakes delayed requests
        http.stop(grace)
        self._http = None

    def __enter__(self) -> SfnEndpoint:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def in_flight(self) -> int:
        """Requests being served right now (delayed ones included)."""
        http = self._http
        return 0 if http is None else http.in_flight

    # -- configuration

    def register(self, action: str, handler: Handler) -> None:
        """Serve ``AWSStepFunctions.<action>`` with ``handler(request) -> response``.

        The handler raises :class:`ApiError` for an error answer; any other exception becomes a
        500 InternalFailure (and is logged), never a crash.
        """
        with self._lock:
            self._handlers[action] = handler

    def inject(
        self,
        action: str,
        fault: Fault,
        times: int | None = 1,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Script ``fault`` for the next ``times`` requests of ``action`` (``"*"``: any action).

        ``times=None`` repeats it on every request until :meth:`clear_faults`. ``when(request)``
        limits it to the requests it accepts (e.g. one task token). Scripts queue in the order
        injected: ``inject(a, throttle(), 2); inject(a, delay(1))`` throttles twice, then delays.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        with self._lock:
            self._faults.setdefault(action, []).append(_Script(fault, times, when))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls_of(self, action: str) -> list[Call]:
        """The journaled requests of one action."""
        with self._lock:
            return [c for c in self.calls if c.action == action]

    # -- serving

    def _next_fault(self, action: str, request: dict[str, Any]) -> Fault | None:
        with self._lock:
            for key in (action, "*"):
                queue = self._faults.get(key, [])
                for index, script in enumerate(queue):
                    if script.when is not None and not script.when(request):
                        continue
                    if script.remaining is not None:
                        script.remaining -= 1
                        if script.remaining <= 0:
                            del queue[index]
                    return script.fault
        return None

    def _apply_fault(self, action: str, request: dict[str, Any]) -> None:
        fault = self._next_fault(action, request)
        if fault is None:
            return
        if fault.kind == "drop":
            raise DropConnection
        if fault.kind == "error":
            raise ApiError(fault.code, fault.message or fault.code, fault.status)
        self._stopping.wait(fault.seconds)

    def answer(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Serve one request given its ``X-Amz-Target`` and body, without HTTP (the local runner's
        in-process transport): ``(status, JSON body)``, status -1 for a scripted dropped connection."""
        http = self._http
        return self._dispatch(target, raw) if http is None else http.call(target, raw)

    def _dispatch(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            handlers = dict(self._handlers)
        action, request, status, body = dispatch(handlers, target, raw, before=self._apply_fault)
        code = "ConnectionDropped" if status == DROP else body.get("__type") if status != 200 else None
        self._journal(action, request, status, code)
        return status, body

    def _journal(self, action: str, request: Any, status: int, code: Any) -> None:
        if not self.journal:
            return
        with self._lock:
            self.calls.append(Call(action, request, status, None if code is None else str(code)))
