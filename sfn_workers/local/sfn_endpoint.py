"""A local Step Functions API endpoint speaking AWS JSON 1.0, strict about the task-token calls.

boto3's ``stepfunctions`` client reaches it through ``AWS_ENDPOINT_URL_SFN``. Out of the box it
answers SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat over a
:class:`~sfn_workers.local.tokens.TaskTokenBackend`, enforcing the limits and error codes of the
real API (moto does not), so that a worker that would be rejected by AWS is rejected here too:

===================  ==========================================================================
SendTaskSuccess      taskToken 1..2048 chars; output <= 262,144 UTF-8 bytes (ValidationException),
                     valid JSON (InvalidOutput)
SendTaskFailure      taskToken 1..2048; error <= 256 chars; cause <= 32,768 chars (ValidationException)
SendTaskHeartbeat    taskToken 1..2048
===================  ==========================================================================

The backend answers InvalidToken / TaskDoesNotExist / TaskTimedOut by raising
:class:`~sfn_workers.local.tokens.ApiError`. More actions are added with :meth:`SfnEndpoint.register`
(the ``serve`` command adds CreateStateMachine, StartExecution...).

For tests, :meth:`SfnEndpoint.inject` scripts faults per action (throttling, 5xx, refusal, a dropped
connection, delays), and :class:`MemoryTokens` is a strict in-memory backend that records every
accepted outcome and every refused call, so a test can assert "exactly one outcome per token".
A bad request (malformed JSON, unknown action, missing or mistyped fields) gets the AWS error answer
botocore expects; nothing a client sends crashes the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from sfn_workers.local.tokens import ApiError, TaskTokenBackend

__all__ = [
    "CAUSE_LIMIT",
    "ERROR_LIMIT",
    "OUTPUT_LIMIT_BYTES",
    "TOKEN_LIMIT",
    "ApiRequest",
    "Call",
    "Fault",
    "MemoryTokens",
    "Outcome",
    "SfnEndpoint",
]

_log = logging.getLogger(__name__)

#: SendTaskSuccess ``output``: UTF-8 bytes of the JSON text.
OUTPUT_LIMIT_BYTES = 262_144
#: SendTaskFailure ``error``: characters.
ERROR_LIMIT = 256
#: SendTaskFailure ``cause``: characters.
CAUSE_LIMIT = 32_768
#: ``taskToken``: characters (the current API model; older documentation said 1024).
TOKEN_LIMIT = 2_048

TARGET_PREFIX = "AWSStepFunctions."
CONTENT_TYPE = "application/x-amz-json-1.0"

Handler = Callable[[dict[str, Any]], dict[str, Any]]


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


# -- request validation ------------------------------------------------------------------------


class ApiRequest:
    """Typed access to one AWS JSON request's members; constraint violations are reported together,
    worded as the service words them, by :meth:`check`."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.problems: list[str] = []

    def text(self, name: str, *, required: bool = False, low: int = 0, high: int, utf8: bool = False) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.problems.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
            return None
        if not isinstance(value, str):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected a string")
        size = len(value.encode("utf-8")) if utf8 else len(value)
        if size > high:
            self.problems.append(
                f"Value at '{name}' failed to satisfy constraint: Member must have length less than or equal to {high}"
            )
        elif size < low:
            self.problems.append(
                f"Value at '{name}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {low}"
            )
        return value

    def number(self, name: str, *, low: int, high: int) -> int | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected an integer")
        if value > high:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value less than or "
                f"equal to {high}"
            )
        elif value < low:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value greater than or "
                f"equal to {low}"
            )
        return value

    def flag(self, name: str) -> bool | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected a boolean")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(name, high=1000)
        if value is not None and value not in allowed:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(allowed)}]"
            )
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected an object")
        return value

    def check(self) -> None:
        if self.problems:
            count = len(self.problems)
            raise ApiError(
                "ValidationException",
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(self.problems),
            )


def _task_handlers(backend: TaskTokenBackend) -> dict[str, Handler]:
    def success(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.text("taskToken", required=True, low=1, high=TOKEN_LIMIT)
        output = check.text("output", required=True, high=OUTPUT_LIMIT_BYTES, utf8=True)
        check.check()
        assert token is not None and output is not None
        try:
            json.loads(output)
        except ValueError:
            raise ApiError("InvalidOutput", "Invalid Output: the output is not valid JSON") from None
        backend.send_task_success(token, output)
        return {}

    def failure(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.text("taskToken", required=True, low=1, high=TOKEN_LIMIT)
        error = check.text("error", high=ERROR_LIMIT)
        cause = check.text("cause", high=CAUSE_LIMIT)
        check.check()
        assert token is not None
        backend.send_task_failure(token, error, cause)
        return {}

    def heartbeat(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.text("taskToken", required=True, low=1, high=TOKEN_LIMIT)
        check.check()
        assert token is not None
        backend.send_task_heartbeat(token)
        return {}

    return {"SendTaskSuccess": success, "SendTaskFailure": failure, "SendTaskHeartbeat": heartbeat}


# -- the server --------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes the connections itself, with a grace period
    allow_reuse_address = True
    endpoint: SfnEndpoint


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm holds the body
    # until the client's delayed ACK (~40 ms per call on Linux).
    disable_nagle_algorithm = True
    server: _Server
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        self.server.endpoint._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.endpoint._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("sfn endpoint: " + format, *args)

    def do_POST(self) -> None:
        self.server.endpoint._serve(self)

    def do_GET(self) -> None:
        self._answer(404, {"__type": "UnknownOperationException", "message": "POST AWS JSON 1.0 requests to /"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400 and "__type" in body:
            self.send_header("x-amzn-ErrorType", str(body["__type"]))
        self.end_headers()
        self.wfile.write(data)


class SfnEndpoint:
    """A threaded HTTP server answering Step Functions API calls (AWS JSON 1.0) on 127.0.0.1.

    Use it as a context manager, or ``start()``/``stop()``; ``url`` is what ``AWS_ENDPOINT_URL_SFN``
    should be set to. ``calls`` journals every request and its answer (token values included: it
    is a test tool, never logged); ``journal=False`` turns it off for a long-running server.
    """

    def __init__(
        self, backend: TaskTokenBackend, host: str = "127.0.0.1", port: int = 0, *, journal: bool = True
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.host = host
        self.port = port
        self._handlers: dict[str, Handler] = _task_handlers(backend)
        self._faults: dict[str, list[_Script]] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self.calls: list[Call] = []

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns once the port is listening."""
        if self._server is not None:
            return
        server = _Server((self.host, self.port), _RequestHandler)
        server.endpoint = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sfn-endpoint", daemon=True
        )
        self._thread.start()

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds, close the rest."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes delayed requests
        server.shutdown()
        server.server_close()
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=grace)
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=grace)
        self._server = None
        self._thread = None

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
        with self._lock:
            return self._busy

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

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

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

    def _journal(self, action: str, request: Any, status: int, code: str | None) -> None:
        if not self.journal:
            return
        with self._lock:
            self.calls.append(Call(action, request, status, code))

    def _serve(self, http: _RequestHandler) -> None:
        with self._lock:
            self._busy += 1  # counted so that stop() can let requests in flight finish
        try:
            self._serve_one(http)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _serve_one(self, http: _RequestHandler) -> None:
        status, body = self._dispatch(http)
        if status < 0:  # a scripted dropped connection
            http.close_connection = True
            with contextlib.suppress(OSError):
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        http._answer(status, body)

    def answer(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Serve one request given its ``X-Amz-Target`` and body, without HTTP (the local runner's
        in-process transport): ``(status, JSON body)``, status -1 for a scripted dropped connection."""
        with self._lock:
            self._busy += 1
        try:
            return self._dispatch_request(target, raw)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _dispatch(self, http: _RequestHandler) -> tuple[int, dict[str, Any]]:
        try:
            raw = self._read_body(http)
        except ApiError as exc:
            self._journal("?", None, exc.status, exc.code)
            return exc.status, {"__type": exc.code, "message": exc.message}
        return self._dispatch_request(http.headers.get("X-Amz-Target", ""), raw)

    def _dispatch_request(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        action = "?"
        request: Any = None
        try:
            if not target.startswith(TARGET_PREFIX):
                raise ApiError("UnknownOperationException", f"missing or unknown X-Amz-Target {target[:100]!r}")
            action = target[len(TARGET_PREFIX) :]
            try:
                request = json.loads(raw.decode("utf-8") or "{}")
            except (UnicodeDecodeError, ValueError):
                raise ApiError("SerializationException", "the request body is not valid JSON") from None
            if not isinstance(request, dict):
                raise ApiError("SerializationException", "the request body must be a JSON object")
            with self._lock:
                handler = self._handlers.get(action)
            if handler is None:
                raise ApiError("UnknownOperationException", f"unknown operation {action[:100]!r}")
            fault = self._next_fault(action, request)
            if fault is not None:
                if fault.kind == "drop":
                    self._journal(action, request, -1, "ConnectionDropped")
                    return -1, {}
                if fault.kind == "error":
                    raise ApiError(fault.code, fault.message or fault.code, fault.status)
                self._stopping.wait(fault.seconds)
            response = handler(request)
        except ApiError as exc:
            self._journal(action, request, exc.status, exc.code)
            return exc.status, {"__type": exc.code, "message": exc.message}
        except Exception:  # a bug in a handler must not take the endpoint down
            _log.exception("sfn endpoint: %s failed", action)
            self._journal(action, request, 500, "InternalFailure")
            return 500, {"__type": "InternalFailure", "message": "internal error"}
        self._journal(action, request, 200, None)
        return 200, response if isinstance(response, dict) else {}

    @staticmethod
    def _read_body(http: _RequestHandler) -> bytes:
        length_text = http.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else 0
        except ValueError:
            http.close_connection = True
            raise ApiError("SerializationException", "bad Content-Length") from None
        if length < 0 or length > 16 * 1024 * 1024:
            http.close_connection = True
            raise ApiError("SerializationException", "request body too large")
        return http.rfile.read(length) if length else b""
