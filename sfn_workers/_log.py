"""The Powertools Logger sfn-workers logs through, and per-invocation correlation keys.

Correlation keys (``function_request_id``, ``execution``, ``state``, ``task_token``...) live in
Powertools' thread-safe keys, a context variable: they belong to the invocation running in this
thread, are on every line logged while it runs (the framework's failure lines included), and never
show on another thread's lines. When the invocation ends the keys are put back as they were, so a
``function_request_id`` appended by ``@logger.inject_lambda_context`` stays.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["CORRELATION_KEYS", "LineHandler", "correlated", "get_logger", "mask_tokens", "write_line"]

#: Keys set for one invocation and restored after it, so warm invocations never mix them up.
CORRELATION_KEYS = ("function_request_id", "execution", "state", "task_token", "message_id")
DEFAULT_SERVICE = "sfn-workers"

_loggers: dict[str, Logger] = {}
_lock = threading.Lock()
#: One lock for every line sfn-workers' handlers write, whichever Logger: lines never interleave.
_write_lock = threading.Lock()


def write_line(text: str) -> None:
    """Write ``text`` and a newline to the current stdout in one write, under the shared lock."""
    stream = sys.stdout
    with _write_lock:
        stream.write(text + "\n")
        stream.flush()


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record as one ``write()`` of one whole line, under a process-wide lock.

    The stream is ``sys.stdout`` as it is when the line is written (not when the handler was
    made), so that a test's output capture or a redirected stdout gets the lines.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record).replace("\n", "\\n"))
        except Exception:
            self.handleError(record)


def get_logger(service: str | None = None) -> Logger:
    """The Powertools Logger of ``service`` (default: POWERTOOLS_SERVICE_NAME, else "sfn-workers").

    Created on first use; Powertools shares handlers between Loggers of one service, so a user's
    own ``Logger()`` of the same service writes to the same stream with the same keys.
    """
    name = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE
    logger = _loggers.get(name)
    if logger is None:
        with _lock:
            logger = _loggers.get(name)
            if logger is None:
                from aws_lambda_powertools import Logger

                fresh = not logging.getLogger(name).handlers
                handler = LineHandler() if fresh else None
                logger = _loggers[name] = Logger(service=name, logger_handler=handler)
    return logger


def _keys_variable() -> contextvars.ContextVar[dict[str, Any]] | None:
    """Powertools' context variable of thread-safe keys, when this Powertools version has one."""
    try:
        from aws_lambda_powertools.logging.formatter import THREAD_LOCAL_KEYS
    except ImportError:  # pragma: no cover - a Powertools without it: the public methods below
        return None
    return THREAD_LOCAL_KEYS if isinstance(THREAD_LOCAL_KEYS, contextvars.ContextVar) else None


_KEYS: contextvars.ContextVar[dict[str, Any]] | None = None
_KEYS_READ = False  # read on first use: importing Powertools at sfn_workers' import costs a cold start


def _keys() -> contextvars.ContextVar[dict[str, Any]] | None:
    global _KEYS, _KEYS_READ
    if not _KEYS_READ:
        _KEYS, _KEYS_READ = _keys_variable(), True
    return _KEYS


class correlated:  # used like a function: ``with correlated(logger, keys):``
    """Add ``keys`` to every line logged in this thread (context) until the block ends.

    Set and reset on Powertools' own context variable (what ``thread_safe_append_keys`` writes),
    so that the keys before the block come back exactly, and a warm call pays two variable
    operations rather than Powertools' method chain.
    """

    __slots__ = ("_before", "_keys", "_logger", "_token", "_variable")

    def __init__(self, logger: Logger, keys: Mapping[str, Any]) -> None:
        self._logger = logger
        self._keys = keys
        self._token: contextvars.Token[dict[str, Any]] | None = None
        self._variable: contextvars.ContextVar[dict[str, Any]] | None = None
        self._before: dict[str, Any] | None = None

    def __enter__(self) -> None:
        if not self._keys:
            return
        variable = self._variable = _KEYS if _KEYS_READ else _keys()
        if variable is not None:
            self._token = variable.set({**variable.get(), **self._keys})
            return
        self._before = dict(self._logger.thread_safe_get_current_keys())
        self._logger.thread_safe_append_keys(**self._keys)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            self._variable.reset(self._token)  # type: ignore[union-attr]
        elif self._before is not None:
            self._logger.thread_safe_clear_keys()
            if self._before:
                self._logger.thread_safe_append_keys(**self._before)


# -- tokens never in logs ----------------------------------------------------------------------


def _mask_body(body: str, fields: frozenset[str]) -> str:
    if not any(f'"{name}"' in body for name in fields):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if isinstance(parsed, Mapping):
        return json.dumps(_mask_event(parsed, fields))
    return body


def _mask_event(event: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    from sfn_workers.context import redact_token

    masked = dict(event)
    for name in fields:
        value = masked.get(name)
        if isinstance(value, str):
            masked[name] = redact_token(value)
    records = masked.get("Records")
    if isinstance(records, list):
        masked["Records"] = [
            {**r, "body": _mask_body(r["body"], fields)}
            if isinstance(r, Mapping) and isinstance(r.get("body"), str)
            else r
            for r in records
        ]
    return masked


def _mask_record(record: Any, fields: frozenset[str]) -> Any:
    if isinstance(record, Mapping) and isinstance(record.get("body"), str):
        return {**record, "body": _mask_body(record["body"], fields)}
    return record


class _TokenMask(logging.Filter):
    """Replaces task tokens in a logged event (Powertools' ``log_event=True``) by their digest."""

    def __init__(self) -> None:
        super().__init__("sfn-workers-token-mask")
        self.fields: frozenset[str] = frozenset()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, Mapping):
            record.msg = _mask_event(record.msg, self.fields)
        return True


def mask_tokens(logger: Logger, fields: Iterable[str]) -> None:
    """Mask the task token at ``fields`` in events logged through ``logger`` (and its service).

    Powertools' ``@logger.inject_lambda_context(log_event=True)`` logs the whole event, and with it
    a usable task token; the filter on the service's logger replaces it by its digest.
    """
    std = logging.getLogger(logger.service)
    for existing in std.filters:
        if isinstance(existing, _TokenMask):
            existing.fields |= frozenset(fields)
            return
    mask = _TokenMask()
    mask.fields = frozenset(fields)
    std.addFilter(mask)
