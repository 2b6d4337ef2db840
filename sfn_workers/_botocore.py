"""botocore's errors, read in one place: error code, HTTP status, ``Retry-After``, and what they mean.

Retries, callbacks and offloading ask this module what a failure was (throttled? the task closed?
the object missing?) and never parse botocore's exceptions themselves. botocore is never imported:
its exception classes are recognised by name through the MRO, so ``import sfn_workers`` stays
light and a direct-mode invocation with a small payload never loads it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

__all__ = [
    "MISSING_OBJECT_CODES",
    "OUTPUT_REFUSED_CODES",
    "THROTTLING_CODES",
    "TOKEN_CLOSED_CODES",
    "TRANSIENT_CODES",
    "aws_error_code",
    "aws_status_code",
    "classify_aws",
    "describe_aws_failure",
    "is_aws_failure",
    "is_missing_object",
    "is_output_refused",
    "is_token_closed",
    "retry_after",
]

#: Error codes AWS services answer when they throttle (the union botocore's standard mode knows).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
#: Error codes of transient server-side failures that may come without a 5xx status.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
#: SendTask* answers meaning there is no task left to report to: it timed out (its TimeoutSeconds
#: or HeartbeatSeconds passed, or it was already closed), its execution ended, or the token is
#: not one Step Functions issued. Retrying cannot help; the outcome is logged instead.
TOKEN_CLOSED_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
#: SendTaskSuccess answers refusing the output itself (not JSON, over the size limit).
OUTPUT_REFUSED_CODES = frozenset({"InvalidOutput", "ValidationException"})
#: What S3 answers for an object that does not exist (GetObject, HeadObject).
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

_BOTOCORE = "botocore.exceptions"
# botocore.exceptions classes whose subclasses are transport failures (botocore's own standard
# mode retries exactly these two trees); the timeout ones cost more retry budget, as in the SDKs.
_TRANSPORT_CLASSES = frozenset({"ConnectionError", "HTTPClientError"})
_TIMEOUT_CLASSES = frozenset({"ReadTimeoutError", "ConnectTimeoutError"})


def _response(exc: BaseException) -> Mapping[str, object] | None:
    response = getattr(exc, "response", None)
    return response if isinstance(response, Mapping) else None


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``"ThrottlingException"``...), else None."""
    response = _response(exc)
    error = response.get("Error") if response is not None else None
    if isinstance(error, Mapping):
        code = error.get("Code")
        if code is not None:
            return str(code)
    return None


def _metadata(exc: BaseException) -> Mapping[str, object] | None:
    response = _response(exc)
    meta = response.get("ResponseMetadata") if response is not None else None
    return meta if isinstance(meta, Mapping) else None


def aws_status_code(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ``ClientError``, else None."""
    meta = _metadata(exc)
    status = meta.get("HTTPStatusCode") if meta is not None else None
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _botocore_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == _BOTOCORE}


def is_aws_failure(exc: BaseException) -> bool:
    """One of botocore's errors: a service's answer or a transport failure."""
    return any(cls.__module__ == _BOTOCORE for cls in type(exc).__mro__)


def classify_aws(exc: BaseException) -> str | None:
    """Why ``exc`` is a transient AWS failure, or None if it is not one.

    Answers ``"throttling"`` (a throttling error code), ``"timeout"`` (botocore read/connect
    timeout), ``"connection"`` (other botocore transport errors), ``"server"`` (a 5xx status or a
    transient server error code). Validation, access and not-found errors answer None.
    """
    code = aws_error_code(exc)
    if code in THROTTLING_CODES:
        return "throttling"
    if code in TRANSIENT_CODES:
        return "server"
    status = aws_status_code(exc)
    if status is not None and 500 <= status <= 599:
        return "server"
    if code is None and status is None:
        names = _botocore_names(exc)
        if names & _TIMEOUT_CLASSES:
            return "timeout"
        if names & _TRANSPORT_CLASSES:
            return "connection"
    return None


def _header(exc: BaseException, name: str) -> str | None:
    meta = _metadata(exc)
    headers = meta.get("HTTPHeaders") if meta is not None else None
    if not isinstance(headers, Mapping):
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return None if value is None else str(value).strip()


def _seconds_until(date: str, now: Callable[[], float]) -> float | None:
    import email.utils  # deferred: only HTTP-date headers need it, and it costs cold-start time

    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - now()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None  # not a date, or one no clock can reach (year 99999): as if absent


def retry_after(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (its ``Retry-After`` header), or None.

    Both forms of the header are understood: delta-seconds and an HTTP date (compared with
    ``now()``, wall-clock seconds). A value that is not a finite number of seconds is ignored,
    never raised: it must not replace the error that carried it.
    """
    text = _header(exc, "retry-after")
    if text is None:
        return None
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    if seconds is None or math.isnan(seconds):
        return None
    return max(0.0, seconds)  # +inf stays: the caller caps it


def is_token_closed(exc: BaseException) -> bool:
    """Step Functions answered that the task behind the token is closed (see TOKEN_CLOSED_CODES)."""
    return aws_error_code(exc) in TOKEN_CLOSED_CODES


def is_output_refused(exc: BaseException) -> bool:
    """SendTaskSuccess was refused for its output (invalid JSON or too large)."""
    return aws_error_code(exc) in OUTPUT_REFUSED_CODES


def is_missing_object(exc: BaseException) -> bool:
    """S3 answered that the object does not exist (not: that the bucket does not)."""
    return aws_error_code(exc) in MISSING_OBJECT_CODES


def describe_aws_failure(exc: BaseException) -> str:
    """``"<code>: <message>"`` for an error message that says what AWS answered."""
    code = aws_error_code(exc)
    return f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
