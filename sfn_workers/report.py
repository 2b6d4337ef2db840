"""Answering a task token later: the other half of ``ctx.hand_off()``.

A task that handed its token to a person or another system ends without an outcome; the code that
answers later (an approval API, a webhook, an activity worker) calls :func:`report_success` or
:func:`report_failure` with the token. They give that answer what the decorator gives its own:
the API's limits (error 256 and cause 32,768 characters, output 256 KiB), offloading of a large
output to S3 (a pointer the next ``@task`` resolves), and Send* calls retried with full jitter
inside a deadline. A token that is closed already (timed out, its execution ended) is not an
error: the answer is ``False`` and nothing is retried. Tokens are never logged whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sfn_workers import _log
from sfn_workers._aws import Clients, default_clients
from sfn_workers._limits import CAUSE_MAX_CHARS, ERROR_MAX_CHARS, PAYLOAD_MAX_BYTES
from sfn_workers.callbacks import HEARTBEAT_ATTEMPTS, SEND_ATTEMPTS, count_metric, send
from sfn_workers.context import Deadline, current_context, redact_token
from sfn_workers.errors import (
    CallbackDeliveryError,
    ConfigurationError,
    OutputValidationError,
    PayloadTooLarge,
    describe,
    is_output_refused,
    is_token_closed,
)
from sfn_workers.models import Output
from sfn_workers.offload import S3Offload

__all__ = [
    "DEFAULT_REPORT_SECONDS",
    "handoff_id",
    "report_failure",
    "report_heartbeat",
    "report_success",
]

#: How long an answer is retried when no deadline is given and no task invocation is running.
DEFAULT_REPORT_SECONDS = 20.0
#: Marker appended to a cause cut to the API's limit.
_CUT = "... [truncated]"
#: Offloaded outputs of answers are stored under this scope when no execution is known.
_SCOPE = "handoff"

ClientsArg = Mapping[str, Any] | Clients | None
DeadlineArg = Deadline | float | None


def handoff_id(token: str) -> str:
    """A stable, opaque id for a handed-off token: store the token under it, put it in messages.

    It is a digest, so it reveals nothing of the token, and a retried invocation that hands off
    the same token gets the same id (one stored request, not two).
    """
    _check_token(token)
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def report_success(
    token: str,
    output: Any,
    *,
    offload: S3Offload | bool | None = None,
    clients: ClientsArg = None,
    deadline: DeadlineArg = None,
) -> bool:
    """SendTaskSuccess for ``token`` with ``output`` (a pydantic model or any JSON value).

    Args:
        offload: an :class:`S3Offload`, or False to never offload (an output over 256 KiB then
            raises :class:`PayloadTooLarge` before anything is sent). Default: ``S3Offload()``
            from the ``SFN_WORKERS_*`` settings, as ``@task`` does.
        clients: boto3 clients to use (``{"stepfunctions": ..., "s3": ...}``).
        deadline: a :class:`Deadline` or seconds from now that retries stay inside (default: the
            running task's deadline, else ``DEFAULT_REPORT_SECONDS``).

    Returns True when Step Functions accepted it, False when the task was closed already.
    Raises :class:`CallbackDeliveryError` (saying why) when it could not be delivered, and
    :class:`OutputValidationError` when ``output`` is not JSON.
    """
    _check_token(token)
    resolved = _clients(clients)
    text = _offloaded(_output(output), offload, resolved).text
    return _deliver(resolved, "SendTaskSuccess", token, _deadline(deadline), output=text)


def report_failure(
    token: str,
    error: str | BaseException,
    cause: str = "",
    *,
    clients: ClientsArg = None,
    deadline: DeadlineArg = None,
) -> bool:
    """SendTaskFailure for ``token``: ``error`` is what the state's Retry/Catch match.

    ``error`` may be an exception: its error name and a Lambda-like JSON cause are reported, as
    the decorator does. ``error`` is cut to 256 characters and ``cause`` to 32,768 (the API
    refuses longer ones, which would leave the execution waiting). Returns and raises as
    :func:`report_success`.
    """
    _check_token(token)
    if isinstance(error, BaseException):
        error, described = describe(error)
        cause = cause or described
    error = str(error)[:ERROR_MAX_CHARS]
    cause = _cut(str(cause), CAUSE_MAX_CHARS)
    return _deliver(_clients(clients), "SendTaskFailure", token, _deadline(deadline), error=error, cause=cause)


def report_heartbeat(token: str, *, clients: ClientsArg = None, deadline: DeadlineArg = None) -> bool:
    """SendTaskHeartbeat for ``token``, for an answering side that works for a long time.

    Returns True when accepted, False when the task is closed (stop the work: nobody is waiting
    for its result any more); raises :class:`CallbackDeliveryError` when it could not be sent.
    """
    _check_token(token)
    return _deliver(_clients(clients), "SendTaskHeartbeat", token, _deadline(deadline), attempts=HEARTBEAT_ATTEMPTS)


# -- shared steps ------------------------------------------------------------------------------


def _check_token(token: Any) -> None:
    if not isinstance(token, str) or not token:
        raise ConfigurationError(f"a task token must be a non-empty string, not {type(token).__name__}")


def _clients(clients: ClientsArg) -> Clients:
    if isinstance(clients, Clients):
        return clients
    return Clients(clients) if clients else default_clients()


def _deadline(deadline: DeadlineArg) -> Deadline:
    if isinstance(deadline, Deadline):
        return deadline
    if deadline is not None:
        return Deadline.after(float(deadline))
    ctx = current_context()
    if ctx is not None and ctx.deadline is not None:
        return ctx.deadline
    return Deadline.after(DEFAULT_REPORT_SECONDS)


def _output(value: Any) -> Output:
    """The output as compact JSON, serialised once (models by pydantic, NaN refused)."""
    dump = getattr(value, "model_dump_json", None)
    try:
        if callable(dump) and hasattr(value, "model_dump"):
            return Output(value.model_dump(mode="json"), text=dump())
        return Output.of(value)
    except (TypeError, ValueError) as exc:
        raise OutputValidationError(f"output is not JSON: {exc}") from exc


def _offloaded(output: Output, option: S3Offload | bool | None, clients: Clients) -> Output:
    if option is None or option is True:
        option = S3Offload()
    if option is False:
        if output.size > PAYLOAD_MAX_BYTES:
            raise PayloadTooLarge(
                f"output is {output.size} bytes, over the Step Functions limit of {PAYLOAD_MAX_BYTES}; "
                "pass offload=S3Offload(...) or report less"
            )
        return output
    if not isinstance(option, S3Offload):
        raise ConfigurationError(f"offload must be an S3Offload, True or False, not {option!r}")
    ctx = current_context()
    scope = (ctx.execution if ctx is not None else None) or _SCOPE
    return option.offload(output, clients, scope)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_CUT)] + _CUT


def _deliver(
    clients: Clients, action: str, token: str, deadline: Deadline, attempts: int = SEND_ATTEMPTS, **params: Any
) -> bool:
    logger = _log.get_logger()
    keys = {"task_token": redact_token(token), "action": action}
    try:
        send(clients, action, attempts, deadline, taskToken=token, **params)
    except Exception as exc:
        if is_token_closed(exc):
            count_metric("CallbackTokenClosed")
            logger.warning(f"{action}: the task is closed already (timed out, or its execution ended)", extra=keys)
            return False
        count_metric("CallbackUndeliverable")
        reason = _reason(exc, token)
        logger.error(f"{action} could not be delivered", extra={**keys, "reason": reason})
        what = "Step Functions refused the output" if is_output_refused(exc) else "it failed"
        raise CallbackDeliveryError(f"{action} for task token {redact_token(token)}: {what}: {reason}") from exc
    if action != "SendTaskHeartbeat":
        count_metric("CallbackSuccess" if action == "SendTaskSuccess" else "CallbackFailure")
        logger.info(f"{action} accepted", extra=keys)
    return True


def _reason(exc: BaseException, token: str) -> str:
    """Why a call failed, without the token (an error message may quote request parameters)."""
    text = (str(exc) or type(exc).__name__).replace(token, str(redact_token(token)))
    return text if len(text) <= 500 else text[:500] + _CUT
