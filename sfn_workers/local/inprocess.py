"""Answer boto3's calls to the embedded emulator in this process: the same servers, minus the sockets.

The local runner's AWS (moto's server app, the SendTask* endpoint) lives in this process. Over HTTP
every call a handler makes pays for a socket round trip, an HTTP parse and two thread switches on
each side, several milliseconds on a busy machine, which made the sample workflow's AWS calls 90% of
an execution. The in-process transport is a botocore ``before-send`` hook: a request addressed to
one of the embedded servers' URLs is handed to that server's own request handler (moto's WSGI app,
the endpoint's dispatcher) and its answer returned as the HTTP response, so boto3 still builds,
signs and parses every request the way it does against AWS, and the emulator sees the request it
would see over HTTP. Anything else (another emulator, real AWS) goes out as usual.

The hook is installed once per process in botocore's built-in handlers, so every boto3 session
created afterwards carries it (the default boto3 session and sfn-workers' client cache, if they
already exist, get it too). A client made from a session older than that keeps using HTTP, which
still works: the servers keep listening, and both transports reach the same state.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

__all__ = ["Transport", "header_text", "request_body", "transport", "wsgi_answer"]

Answer = Callable[[Any], tuple[int, dict[str, str], bytes]]  # AWSPreparedRequest -> (status, headers, body)


class _Raw(io.BytesIO):
    """What botocore reads a response body from (``stream()`` for content, ``read()`` for blobs)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        if chunk:
            yield chunk


def request_body(request: Any) -> bytes:
    """A botocore request's body as bytes, whatever botocore built it from."""
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()  # a file-like body (an S3 upload from a file, aws-chunked)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def header_text(value: Any) -> str:
    """A header value as text (botocore keeps some as bytes)."""
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)


def wsgi_answer(app: Any) -> Answer:
    """An :data:`Answer` that runs a request through a WSGI ``app`` as werkzeug's server (and moto's
    request handler, which keeps underscores in S3 metadata header names) would present it."""
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(request.url)
        body = request_body(request)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(url.path or "/").decode("latin-1"),
            "QUERY_STRING": url.query,
            "RAW_URI": url.path + (f"?{url.query}" if url.query else ""),
            "SERVER_NAME": url.hostname or "127.0.0.1",
            "SERVER_PORT": str(url.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": 0,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        preserved: dict[str, str] = {}
        headers = [(str(name), header_text(value)) for name, value in request.headers.items()]
        dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
        for name, value in headers:
            key = environ_key_for_header(name)
            if "_" in name:  # werkzeug drops these; moto keeps S3 metadata names as written
                if not should_preserve_original_header_name(name) or key in dashed:
                    continue
                preserved.setdefault(key, name)
            if key in environ and key.startswith("HTTP_"):
                environ[key] += "," + value
            else:
                environ[key] = value
        environ.setdefault("HTTP_HOST", url.netloc)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
        status_line: list[str] = []
        response_headers: list[tuple[str, str]] = []

        def start_response(status: str, header_list: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_line[:] = [status]
            response_headers[:] = header_list
            return lambda data: None

        chunks = app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return int(status_line[0].split(" ", 1)[0]), dict(response_headers), data

    return answer


class Transport:
    """Routes requests for registered ``scheme://host:port`` origins to in-process answers while
    at least one user has it active (each open runner in in-process mode is one)."""

    def __init__(self) -> None:
        self._routes: dict[str, Answer] = {}
        self._users = 0
        self._lock = threading.Lock()
        self._installed = False

    def route(self, base_url: str, answer: Answer) -> None:
        """Answer requests to ``base_url`` (``http://127.0.0.1:PORT``) with ``answer`` while active.

        Installs the hook now, so that clients made from here on (the runner's own, cached for the
        process) can switch to in-process whenever a runner asks for it."""
        self.install()
        with self._lock:
            self._routes[base_url.rstrip("/").split("://", 1)[-1]] = answer

    @property
    def active(self) -> bool:
        return self._users > 0

    def acquire(self) -> None:
        self.install()
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)

    @contextmanager
    def activated(self) -> Iterator[Transport]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def install(self) -> None:
        """Add the hook to botocore's built-in handlers (new sessions) and to sessions that exist."""
        with self._lock:
            if self._installed:
                return
            self._installed = True
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("before-send", self))
        for session in _existing_sessions():
            session.register("before-send", self)

    def __call__(self, request: Any, **_: Any) -> Any:
        """botocore's ``before-send``: an in-process response, or None to send it over the network."""
        if not self._users:
            return None
        url: str = request.url
        parts = url.split("/", 3)
        answer = self._routes.get(parts[2]) if len(parts) > 2 else None
        if answer is None:
            return None
        from botocore.awsrequest import AWSResponse, HeadersDict

        status, headers, body = answer(request)
        # Case-insensitive, as urllib3's headers are (botocore looks up "x-amzn-requestid" and the like).
        return AWSResponse(url, status, HeadersDict(headers), _Raw(body))  # type: ignore[arg-type]


def _existing_sessions() -> list[Any]:
    """botocore sessions created before the hook was installed: boto3's default, sfn-workers' cache."""
    sessions = []
    boto3 = sys.modules.get("boto3")
    default = getattr(boto3, "DEFAULT_SESSION", None) if boto3 is not None else None
    if default is not None:
        sessions.append(default._session)
    aws = sys.modules.get("sfn_workers._aws")
    cached = getattr(aws.default_clients(), "_session", None) if aws is not None else None
    if cached is not None:
        sessions.append(cached._session)
    return sessions


transport = Transport()
"""The process's in-process transport (one botocore hook serves every runner)."""
