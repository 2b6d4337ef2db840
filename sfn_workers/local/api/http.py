"""The HTTP side of the local Step Functions API: one threaded server for every local endpoint.

It carries AWS JSON 1.0 requests to a ``dispatch(target, body) -> (status, answer)`` function and
nothing else, with what a server that runs for hours on a developer's machine needs:

- a listen backlog of 128, so a burst of connections is queued, not reset;
- a request deadline: a request must arrive whole (line, headers, body) within ``request_timeout``
  seconds of its first byte, so a client that trickles bytes (slowloris) cannot hold a thread; an
  idle keep-alive connection is closed after ``idle_timeout``;
- a Host check against DNS rebinding: a web page can make a browser send requests to 127.0.0.1
  under its own domain name, so only Host headers naming this machine are served (see
  :class:`HostPolicy`), others get 403 in AWS's error shape;
- a body cap of 16 MiB, and a graceful stop that lets requests in flight finish.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sfn_workers.local.api.protocol import CONTENT_TYPE, ApiError, error_answer

__all__ = ["BODY_LIMIT_BYTES", "DEFAULT_PORT", "LISTEN_BACKLOG", "ApiHttpServer", "HostPolicy"]

_log = logging.getLogger("sfn_workers.local.api")

#: ``sfn-workers serve``'s port unless told otherwise.
DEFAULT_PORT = 8083
LISTEN_BACKLOG = 128
BODY_LIMIT_BYTES = 16 * 1024 * 1024
#: A request's answer: status (-1 drops the connection without answering) and JSON body.
Dispatch = Callable[[str, bytes], tuple[int, dict[str, Any]]]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class HostPolicy:
    """Which ``Host`` headers a local endpoint serves.

    DNS rebinding needs a domain name (the attacker's, resolving to 127.0.0.1), so the policy accepts
    IP literals that reach this server, loopback names (``localhost``), and the names in ``allow``
    (``"*"``: any). Bound to all interfaces (``0.0.0.0``), any IP literal and ``host.docker.internal``
    are accepted too (containers reach the host that way).
    """

    def __init__(self, bound: str, allow: Iterable[str] = ()) -> None:
        self.bound = bound
        self.allow = frozenset(name.lower().rstrip(".") for name in allow)
        self.wildcard = _is_wildcard(bound)

    def accepts(self, header: str | None) -> bool:
        if "*" in self.allow:
            return True
        if not header:
            return False
        name = _host_name(header.strip().lower())
        if name in _LOOPBACK_NAMES or name in self.allow:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return self.wildcard and name == "host.docker.internal"
        return self.wildcard or address.is_loopback or name == self.bound


def _is_wildcard(bound: str) -> bool:
    """Bound to every interface (``0.0.0.0``, ``::`` or empty): any address of the host may be named."""
    if not bound:
        return True
    try:
        return ipaddress.ip_address(bound).is_unspecified
    except ValueError:
        return False


def _host_name(header: str) -> str:
    if header.startswith("["):  # [::1]:8083
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes the connections itself, with a grace period
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG
    api: ApiHttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (or was disconnected at its deadline) is not worth a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            _log.debug("local api: connection from %s ended: %s", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm holds the body
    # until the client's delayed ACK (~40 ms per call on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.api.idle_timeout)  # between requests, and per read
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, add=False)

    def handle_one_request(self) -> None:
        try:
            first = self.rfile.peek(1)  # type: ignore[attr-defined]
        except OSError:  # idle timeout, reset, or closed by the reaper
            self.close_connection = True
            return
        if not first:
            self.close_connection = True
            return
        self.server.api._reading(self.connection, True)  # the request deadline starts at its first byte
        try:
            super().handle_one_request()
        finally:
            self.server.api._reading(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("local api: " + format, *args)

    def do_POST(self) -> None:
        api = self.server.api
        if not api.hosts.accepts(self.headers.get("Host")):
            host = (self.headers.get("Host") or "")[:100]
            self.close_connection = True
            self.answer(
                403,
                {
                    "__type": "AccessDeniedException",
                    "message": f"Host {host!r} is not this local endpoint (DNS rebinding protection); "
                    "use 127.0.0.1 or localhost, or start it with --allow-host",
                },
            )
            return
        try:
            raw = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            self.answer(*error_answer(exc))
            return
        finally:
            api._reading(self.connection, False)
        status, body = api._serve(self.headers.get("X-Amz-Target", ""), raw)
        if status < 0:  # a scripted dropped connection
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.answer(status, body)

    def do_GET(self) -> None:
        self.answer(404, {"__type": "UnknownOperationException", "message": "POST AWS JSON 1.0 requests to /"})

    def _read_body(self) -> bytes:
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else 0
        except ValueError:
            raise ApiError("SerializationException", "bad Content-Length") from None
        if length < 0 or length > BODY_LIMIT_BYTES:
            raise ApiError("SerializationException", "request body too large")
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise ApiError("SerializationException", "the request body ended early")
        return data

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400 and "__type" in body:
            self.send_header("x-amzn-ErrorType", str(body["__type"]))
        self.end_headers()
        self.wfile.write(data)


class ApiHttpServer:
    """A threaded HTTP server for AWS JSON 1.0 requests, bound at construction, serving after :meth:`start`.

    Args:
        dispatch: ``dispatch(x_amz_target, body) -> (status, JSON answer)``.
        host, port: where to listen (port 0: a free one).
        allow_hosts: Host names to accept beyond this machine's (``"*"``: any); see :class:`HostPolicy`.
        request_timeout: seconds a request may take to arrive whole after its first byte.
        idle_timeout: seconds an idle keep-alive connection is kept.
    """

    def __init__(
        self,
        dispatch: Dispatch,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_hosts: Iterable[str] = (),
        request_timeout: float = 10.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self.dispatch = dispatch
        self.host = host
        self.hosts = HostPolicy(host, allow_hosts)
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._connections: dict[socket.socket, float | None] = {}  # -> when its current request began
        self._busy = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server = _Server((host, port), _Handler)
        self._server.api = self

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stopping(self) -> threading.Event:
        """Set when :meth:`stop` begins (wakes requests that wait on purpose)."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._busy

    def start(self) -> None:
        """Serve in daemon threads (requests, and the reaper of overdue requests)."""
        if self._threads:
            return
        serving = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="sfn-api-http", daemon=True
        )
        reaper = threading.Thread(target=self._reap, name="sfn-api-reaper", daemon=True)
        self._threads = [serving, reaper]
        for thread in self._threads:
            thread.start()

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds, close the rest."""
        self._stopping.set()
        if self._threads:
            self._server.shutdown()
        self._server.server_close()
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=grace)
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=grace)
        self._threads = []

    def call(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Serve one request without HTTP (the in-process transport), counted as in flight."""
        return self._serve(target, raw)

    # -- internals

    def _serve(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._busy += 1  # counted so that stop() can let requests in flight finish
        try:
            return self.dispatch(target, raw)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[conn] = None
            else:
                self._connections.pop(conn, None)

    def _reading(self, conn: socket.socket, started: bool) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections[conn] = time.monotonic() if started else None

    def _reap(self) -> None:
        """Close connections whose request has not arrived whole within ``request_timeout``."""
        period = max(0.05, min(1.0, self.request_timeout / 4))
        while not self._stopping.wait(period):
            now = time.monotonic()
            with self._lock:
                late = [
                    c
                    for c, began in self._connections.items()
                    if began is not None and now - began > self.request_timeout
                ]
            for conn in late:
                _log.debug("local api: closing a connection whose request took over %.1f s", self.request_timeout)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
