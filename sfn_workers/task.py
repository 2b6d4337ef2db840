"""``@task``: a typed function becomes a Lambda handler for a Step Functions state.

One :class:`TaskHandler` is built per decorated function, at decoration time (cold start): it reads
the annotations into pydantic adapters, resolves settings and builds the offloader. Each
invocation then goes through the same steps, in this order::

    classify the event        direct | callback (task token) | SQS batch       sources.py
    for each unit of work:
      resolve_input           S3 pointers in the input -> their values         offload.py
      validate_input          payload -> the input type                        models.py
      call                    the user's function, with ctx if it asks
      validate_output         result -> JSON text (serialised once)            models.py
      offload_output          large output -> S3 pointers, or PayloadTooLarge  offload.py
      report                  return it (direct) | SendTaskSuccess/Failure     callbacks.py

Errors leave a direct-mode handler under their Step Functions error name (errors.py); in the
callback modes they are reported with SendTaskFailure instead (callbacks.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from sfn_workers import _log
from sfn_workers._aws import Clients, default_clients
from sfn_workers._tracing import Tracing
from sfn_workers.config import STATES_PAYLOAD_LIMIT, Settings
from sfn_workers.context import Deadline, TaskContext, _current, redact_token
from sfn_workers.errors import ConfigurationError, PayloadTooLarge, error_name, failure_for_direct_mode
from sfn_workers.models import Output, inspect_function
from sfn_workers.offload import S3Offload
from sfn_workers.sources import Mode, Unit, classify, split_payload

__all__ = ["DEFAULT_TOKEN_FIELD", "TaskHandler", "task"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TOKEN_FIELD = "taskToken"


class TaskHandler(Generic[P, R]):
    """The Lambda handler ``@task`` makes: call it as ``handler(event, context)``.

    ``handler.__wrapped__`` is the plain function, for unit tests that skip the pipeline.
    """

    __wrapped__: Callable[P, R]

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        offload: S3Offload | bool | None = None,
        token_field: str | None = None,
        payload_field: str | None = None,
        heartbeat_seconds: float | None = None,
        timeout_margin_ms: int | None = None,
        clients: Mapping[str, Any] | Clients | None = None,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.__wrapped__ = fn
        self.signature = inspect_function(fn)
        self.settings = Settings.resolve(heartbeat_seconds=heartbeat_seconds, timeout_margin_ms=timeout_margin_ms)
        self.token_field = token_field or DEFAULT_TOKEN_FIELD
        self.payload_field = payload_field
        self.offload = _offloader(offload)
        if isinstance(clients, Clients):
            self.clients = clients
        else:
            self.clients = Clients(clients) if clients else default_clients()
        self.logger = _log.get_logger()
        self.tracing = Tracing()

    def __repr__(self) -> str:
        return f"<sfn_workers task {self.__wrapped__.__qualname__}>"

    # -- entry point ---------------------------------------------------------------------------

    def __call__(self, event: Any, context: Any = None) -> Any:
        mode = classify(event, self.token_field)
        if mode is Mode.DIRECT:
            return self.run_direct(event, context)
        from sfn_workers import callbacks  # threads and reporting: only token-carrying events need them

        if mode is Mode.CALLBACK:
            return callbacks.run_callback(self, event, context)
        return callbacks.run_sqs_batch(self, event, context)

    def run_direct(self, event: Any, lambda_context: Any) -> Any:
        """Direct mode: return the output, or raise so that the state sees the error name."""
        try:
            unit = self.unit_of(event)
            return self.process(unit, lambda_context).value
        except Exception as exc:
            self.logger.error("task failed", extra={"error": error_name(exc)})
            failure = failure_for_direct_mode(exc)
            if failure is exc:
                raise
            raise failure from exc

    def unit_of(self, event: Any) -> Unit:
        """The unit of work in a direct or callback event (payload_field applied)."""
        try:
            return split_payload(event, self.token_field, self.payload_field)
        except KeyError as exc:
            from sfn_workers.errors import ValidationError

            raise ValidationError(f"the event has no field {self.payload_field!r} (payload_field)") from exc

    # -- one unit of work, in the documented order ---------------------------------------------

    def process(
        self,
        unit: Unit,
        lambda_context: Any,
        heartbeat: Callable[[], None] | None = None,
        hand_off: Callable[[], None] | None = None,
    ) -> Output:
        """Run one unit of work through the steps; returns the (offloaded if needed) output."""
        ctx = self.context_for(unit, lambda_context, heartbeat)
        ctx.on_hand_off = hand_off
        reset = _current.set(ctx)
        self._correlate(unit, ctx)
        step = self.tracing.step
        try:
            with step("resolve_input", unit.execution, unit.state):
                payload = self.resolve_input(unit.payload)
            with step("validate_input", unit.execution, unit.state):
                value = self.signature.validate_input(payload)
            with step("call", unit.execution, unit.state):
                result = self.signature.call(self.__wrapped__, value, ctx)
            with step("validate_output", unit.execution, unit.state):
                output = self.signature.dump_output(result)
            with step("offload_output", unit.execution, unit.state):
                return self.offload_output(output, unit, ctx)
        finally:
            _current.reset(reset)
            self.logger.remove_keys(_log.CORRELATION_KEYS)

    def context_for(self, unit: Unit, lambda_context: Any, heartbeat: Callable[[], None] | None = None) -> TaskContext:
        deadline = None
        getter = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if getter is not None:
            seconds = (getter() - self.settings.timeout_margin_ms) / 1000.0
            deadline = Deadline(time.monotonic() + seconds)
        ctx = TaskContext(
            token=unit.token,
            lambda_context=lambda_context,
            logger=self.logger,
            deadline=deadline,
            execution=unit.execution,
            state=unit.state,
        )
        if heartbeat is not None:
            ctx._heartbeat = heartbeat
        return ctx

    def _correlate(self, unit: Unit, ctx: TaskContext) -> None:
        keys: dict[str, Any] = {}
        if ctx.request_id:
            keys["function_request_id"] = ctx.request_id
        if unit.execution:
            keys["execution"] = unit.execution
        if unit.state:
            keys["state"] = unit.state
        if unit.token:
            keys["task_token"] = redact_token(unit.token)
        if keys:
            self.logger.append_keys(**keys)

    def resolve_input(self, payload: Any) -> Any:
        """Replace every S3 pointer in the input by its value (no-op with offloading off)."""
        if self.offload is None:
            return payload
        return self.offload.resolve(payload, self.clients)

    def offload_output(self, output: Output, unit: Unit, ctx: TaskContext) -> Output:
        """Move a large output to S3; without offloading, refuse one over the Step Functions limit."""
        if self.offload is not None:
            scope = unit.execution or ctx.request_id or "local"
            return self.offload.offload(output, self.clients, scope)
        size = output.size
        if size > STATES_PAYLOAD_LIMIT:
            raise PayloadTooLarge(
                f"output is {size} bytes, over the Step Functions limit of {STATES_PAYLOAD_LIMIT}; "
                "enable offloading (offload=S3Offload(...)) or return less"
            )
        return output


def _offloader(option: S3Offload | bool | None) -> S3Offload | None:
    if option is None or option is True:
        return S3Offload()
    if option is False:
        return None
    if isinstance(option, S3Offload):
        return option
    raise ConfigurationError(f"offload must be an S3Offload, True or False, not {option!r}")


@overload
def task(fn: Callable[P, R], /) -> TaskHandler[P, R]: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    offload: S3Offload | bool | None = None,
    token_field: str | None = None,
    payload_field: str | None = None,
    heartbeat_seconds: float | None = None,
    timeout_margin_ms: int | None = None,
    clients: Mapping[str, Any] | Clients | None = None,
) -> Callable[[Callable[P, R]], TaskHandler[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    offload: S3Offload | bool | None = None,
    token_field: str | None = None,
    payload_field: str | None = None,
    heartbeat_seconds: float | None = None,
    timeout_margin_ms: int | None = None,
    clients: Mapping[str, Any] | Clients | None = None,
) -> TaskHandler[P, R] | Callable[[Callable[P, R]], TaskHandler[P, R]]:
    """Turn ``fn(payload: In, ctx: TaskContext) -> Out`` into a Lambda handler.

    Works bare (``@task``) and with options (``@task(offload=S3Offload(keep=["orderId"]))``).

    Args:
        offload: an :class:`S3Offload`, or False to neither resolve nor write S3 pointers.
            Default: ``S3Offload()`` configured from ``SFN_WORKERS_*`` variables.
        token_field: where the task token is in the event (default ``"taskToken"``).
        payload_field: take the input from this field of the event (default: the event less
            the token field).
        heartbeat_seconds: send SendTaskHeartbeat this often in callback mode (default off;
            ``SFN_WORKERS_HEARTBEAT_SECONDS``).
        timeout_margin_ms: report ``WorkerTimeout`` this long before the Lambda times out
            (default 1500; ``SFN_WORKERS_TIMEOUT_MARGIN_MS``).
        clients: boto3 clients to use instead of creating them (``{"s3": ..., "stepfunctions": ...}``).
    """

    def decorate(func: Callable[P, R]) -> TaskHandler[P, R]:
        return TaskHandler(
            func,
            offload=offload,
            token_field=token_field,
            payload_field=payload_field,
            heartbeat_seconds=heartbeat_seconds,
            timeout_margin_ms=timeout_margin_ms,
            clients=clients,
        )

    if fn is not None:
        return decorate(fn)
    return decorate
