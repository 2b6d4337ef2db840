"""One exception tree for everything sfn-workers raises.

Each class knows the Step Functions error name that a state's ``Retry``/``Catch`` ``ErrorEquals``
matches. In direct mode the Lambda service reports the class name of the exception that left the
handler as ``errorType``, so every class here is named exactly as its error; a ``TaskFailure``
carrying a user-chosen name leaves the handler as a subclass created with that name.

::

    SfnWorkersError                      (base; never raised itself)
    ├── ConfigurationError               bad option or SFN_WORKERS_* variable (decoration time)
    ├── TaskFailure(error, cause)        raised by user code: fail with a chosen error name
    ├── ValidationError                  the input does not fit the input model
    ├── OutputValidationError            the output does not fit the output model / is not JSON
    ├── PayloadTooLarge                  output over the Step Functions limit, offloading off
    ├── PayloadPointerError              a pointer in the input was refused (which rule says why)
    ├── OffloadError                     S3 refused or failed while offloading the output
    ├── WorkerTimeout                    still running timeout_margin_ms before the Lambda timeout
    ├── RetryBudgetExhausted             a retry refused because the retry budget is empty
    └── CallbackDeliveryError            no outcome could be reported for a task token

Third-party errors (botocore) are read in one place, :mod:`sfn_workers._botocore`; the readers
that used to live here are re-exported from it.
"""

from __future__ import annotations

import json
import traceback
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sfn_workers._limits import CAUSE_MAX_CHARS, ERROR_MAX_CHARS

if TYPE_CHECKING:
    from sfn_workers._botocore import (
        MISSING_OBJECT_CODES,
        OUTPUT_REFUSED_CODES,
        TOKEN_CLOSED_CODES,
        aws_error_code,
        aws_status_code,
        is_missing_object,
        is_output_refused,
        is_token_closed,
    )

#: Re-exported from :mod:`sfn_workers._botocore` on first use: raising an error needs none of them.
_BOTOCORE_NAMES = frozenset(
    {
        "MISSING_OBJECT_CODES",
        "OUTPUT_REFUSED_CODES",
        "TOKEN_CLOSED_CODES",
        "aws_error_code",
        "aws_status_code",
        "is_missing_object",
        "is_output_refused",
        "is_token_closed",
    }
)

__all__ = [
    "CAUSE_LIMIT",
    "ERROR_LIMIT",
    "MISSING_OBJECT_CODES",
    "OUTPUT_REFUSED_CODES",
    "TOKEN_CLOSED_CODES",
    "CallbackDeliveryError",
    "ConfigurationError",
    "OffloadError",
    "OutputValidationError",
    "PayloadPointerError",
    "PayloadTooLarge",
    "RetryBudgetExhausted",
    "SfnWorkersError",
    "TaskFailure",
    "ValidationError",
    "WorkerStopped",
    "WorkerTimeout",
    "aws_error_code",
    "aws_status_code",
    "clean_text",
    "describe",
    "error_name",
    "failure_for_direct_mode",
    "is_missing_object",
    "is_output_refused",
    "is_token_closed",
]


def __getattr__(name: str) -> Any:
    if name not in _BOTOCORE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sfn_workers import _botocore

    value = getattr(_botocore, name)
    globals()[name] = value
    return value


#: SendTaskFailure rejects an ``error`` longer than this (characters).
ERROR_LIMIT = ERROR_MAX_CHARS
#: SendTaskFailure rejects a ``cause`` longer than this (characters).
CAUSE_LIMIT = CAUSE_MAX_CHARS


class SfnWorkersError(Exception):
    """Base of every error sfn-workers raises; ``error_name`` is what Step Functions matches."""

    @property
    def error_name(self) -> str:
        """The name a state's ``ErrorEquals`` matches: the class name, so direct mode agrees."""
        return type(self).__name__


class ConfigurationError(SfnWorkersError, ValueError):
    """An option or an ``SFN_WORKERS_*`` variable has a value that cannot work."""


class ValidationError(SfnWorkersError):
    """The input does not fit the input model (what ``Catch: ["ValidationError"]`` matches)."""


class OutputValidationError(SfnWorkersError):
    """The function's return value does not fit its return annotation, or is not JSON."""


class PayloadTooLarge(SfnWorkersError):
    """The output is over the Step Functions payload limit and offloading is off."""


class PayloadPointerError(SfnWorkersError):
    """A payload pointer in the input was refused; the message names the rule that failed."""


class OffloadError(SfnWorkersError):
    """S3 failed while writing or reading an offloaded payload (S3 down, access denied), or an
    output must be offloaded and no bucket is configured."""


class WorkerTimeout(SfnWorkersError):
    """The function was still running ``timeout_margin_ms`` before the Lambda timeout."""


class WorkerStopped(SfnWorkersError):
    """The activity worker was stopped (SIGTERM) before the task finished within its grace period."""


class RetryBudgetExhausted(SfnWorkersError):
    """A retry was refused because the process-wide retry budget is empty."""


class CallbackDeliveryError(SfnWorkersError):
    """No outcome could be reported for a task token; raised so Lambda or SQS keep the event."""


class TaskFailure(SfnWorkersError):
    """Raise to fail the task with a Step Functions error name of your choosing.

    ``raise TaskFailure("CardDeclined", "issuer said no")`` ends the state with error
    ``CardDeclined``, which ``Catch``/``Retry`` match like any other error name.
    """

    def __init__(self, error: str, cause: str = "") -> None:
        if not isinstance(error, str) or not error:
            raise TypeError("TaskFailure needs a non-empty error name (str)")
        super().__init__(cause or error)
        self.error = error
        self.cause = cause

    @property
    def error_name(self) -> str:
        """The chosen name, not the class's."""
        return self.error

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskFailure, (self.error, self.cause))


@lru_cache(maxsize=256)
def _named_failure_class(name: str) -> type[TaskFailure]:
    # Lambda reports type(exc).__name__ as errorType; a subclass with the chosen name makes the
    # state see exactly that name. Cached so a name maps to one class per process.
    return type(name, (TaskFailure,), {"__module__": __name__, "__qualname__": name})


def clean_text(value: object) -> str:
    """``value`` as text that any JSON encoder and UTF-8 accept, whatever it is.

    A ``__str__`` that raises or returns a non-string, bytes, NUL characters and lone surrogates
    must never cost a report: bytes are decoded with replacement, NUL dropped, surrogates replaced.
    """
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:
            text = f"<{type(value).__name__} whose str() failed>"
        if not isinstance(text, str):  # a str subclass whose __str__ returned something else
            text = f"<{type(value).__name__}>"
    text = str.__str__(text) if type(text) is not str else text
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def error_name(exc: BaseException) -> str:
    """The Step Functions error name for ``exc``, cut to the API's 256 characters."""
    name = exc.error_name if isinstance(exc, SfnWorkersError) else type(exc).__name__
    return clean_text(name)[:ERROR_LIMIT] or type(exc).__name__


def failure_for_direct_mode(exc: BaseException) -> BaseException:
    """What must leave a direct-mode handler so that the state sees ``error_name(exc)``.

    Only a ``TaskFailure`` whose chosen name differs from its class name needs a stand-in;
    everything else already carries the right class name.
    """
    if isinstance(exc, TaskFailure):
        name = error_name(exc)
        if type(exc).__name__ != name:
            stand_in = _named_failure_class(name)(name, clean_text(exc.cause))
            stand_in.__cause__ = exc
            return stand_in
    return exc


_TRUNCATED = "... [truncated]"


def _cause_text(message_json: str, type_json: str, frames_json: list[str]) -> str:
    # Exactly json.dumps({"errorMessage": ..., "errorType": ..., "stackTrace": [...]}, ensure_ascii=False),
    # assembled from pieces serialised once each.
    return f'{{"errorMessage": {message_json}, "errorType": {type_json}, "stackTrace": [{", ".join(frames_json)}]}}'


def _dumps(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def describe(exc: BaseException) -> tuple[str, str]:
    """``(error, cause)`` for SendTaskFailure: the error name and a Lambda-like JSON cause.

    Both fit the API's limits; the cause stays valid JSON by shortening the stack trace first and
    then the message, instead of cutting the JSON text in the middle. Each piece is serialised
    once, so a huge message costs time in proportion to its size, not to its size times the frames.
    """
    error = error_name(exc)
    message = clean_text(exc.cause if isinstance(exc, TaskFailure) and exc.cause else exc)
    # JSON escaping only lengthens text: more than CAUSE_LIMIT characters can never fit.
    cut = len(message) > CAUSE_LIMIT
    message_json = _dumps(message[:CAUSE_LIMIT] + _TRUNCATED if cut else message)
    type_json = _dumps(error)
    frames = [_dumps(line.rstrip("\n")) for line in traceback.format_tb(exc.__traceback__)]
    fixed = len(_cause_text("", type_json, []))
    sizes = [len(frame) + 2 for frame in frames]  # each with its ", " separator
    frames_size = sum(sizes) - 2 if frames else 0
    first = 0  # keep the innermost frames: they say where it happened
    while first < len(frames) and fixed + len(message_json) + frames_size > CAUSE_LIMIT:
        frames_size -= sizes[first]
        first += 1
    kept = frames[first:]
    cause = _cause_text(message_json, type_json, kept)
    if len(cause) > CAUSE_LIMIT:
        raw = message[:CAUSE_LIMIT]
        keep = max(0, len(raw) - (len(cause) - CAUSE_LIMIT) - len(_TRUNCATED) - 16)
        cause = _cause_text(_dumps(raw[:keep] + _TRUNCATED), type_json, kept)
        while len(cause) > CAUSE_LIMIT and keep > 0:  # escaping grew the text: shrink until it fits
            keep = max(0, keep - (len(cause) - CAUSE_LIMIT) - 8)
            cause = _cause_text(_dumps(raw[:keep] + _TRUNCATED), type_json, kept)
    return error, cause
