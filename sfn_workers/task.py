"""``@task``: a typed function becomes a Lambda handler for a Step Functions state.

``@task`` returns a plain function ``handler(event, context)`` (so Powertools' handler decorators
accept it above ``@task``); ``handler.task`` is the :class:`Task` that runs invocations, built once
at decoration (cold start): it reads the annotations into pydantic adapters, resolves settings and
builds the offloader. Each invocation then goes through the same steps, in this order::

    classify the event        direct | callback (task token) | SQS batch       sources.py
    for each unit of work:
      resolve_input           S3 pointers in the input -> their values         offload.py
      validate_input          payload -> the input type                        models.py
      call                    the user's function (awaited if async), once per idempotency key
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
from typing import TYPE_CHECKING, Any, Generic, NoReturn, ParamSpec, Protocol, TypeVar, overload

from sfn_workers import _log, _metrics
from sfn_workers._tracing import Tracing
from sfn_workers.config import MARGIN_SHARE, STATES_PAYLOAD_LIMIT, Settings, non_empty
from sfn_workers.context import Deadline, LambdaContext, TaskContext, _current, redact_token
from sfn_workers.errors import (
    ConfigurationError,
    PayloadTooLarge,
    TaskFailure,
    clean_text,
    error_name,
    failure_for_direct_mode,
)
from sfn_workers.models import Output, inspect_function
from sfn_workers.offload.offloader import S3Offload
from sfn_workers.offload.pointers import POINTER_FIELD
from sfn_workers.sources import Mode, Unit, classify, split_payload

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig

    from sfn_workers._aws import Clients

__all__ = ["DEFAULT_TOKEN_FIELD", "Task", "TaskHandler", "task"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

DEFAULT_TOKEN_FIELD = "taskToken"


class Task(Generic[P, R]):
    """Runs the invocations of one ``@task`` handler (``handler.task``): the pipeline and its settings."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        offload: S3Offload | bool | None = None,
        token_field: str | None = None,
        payload_field: str | None = None,
        heartbeat_seconds: float | None = None,
        timeout_margin_ms: float | None = None,
        clients: Mapping[str, Any] | Clients | None = None,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
        idempotency: BasePersistenceLayer | None = None,
        idempotency_config: IdempotencyConfig | None = None,
    ) -> None:
        self.fn = fn
        self.metrics = metrics
        self.signature = inspect_function(fn)
        self.settings = Settings.resolve(heartbeat_seconds=heartbeat_seconds, timeout_margin_ms=timeout_margin_ms)
        self.token_field = non_empty("token_field", token_field) or DEFAULT_TOKEN_FIELD
        self.payload_field = non_empty("payload_field", payload_field)
        self.offload = _offloader(offload)
        self.injected = _injected(clients)
        self.logger: Logger = logger if logger is not None else _log.get_logger()
        _log.mask_tokens(self.logger, (self.token_field,))
        self.tracing = Tracing()
        self.idempotency = _idempotency(fn, idempotency, idempotency_config)

    @property
    def clients(self) -> Clients:
        """The injected clients, else the process-wide cache (one client per service and endpoint)."""
        if self.injected is not None:
            return self.injected
        from sfn_workers._aws import default_clients  # only S3 pointers and callbacks need a client

        return default_clients()

    def __repr__(self) -> str:
        return f"<sfn_workers task {getattr(self.fn, '__qualname__', self.fn)}>"

    # -- entry point ---------------------------------------------------------------------------

    def __call__(self, event: Any, context: Any = None) -> Any:
        # One EMF document per invocation: the metrics of every step (and of the threads it
        # starts, which copy this context) are summed in one recorder, written at the end.
        recorder = _metrics.Recorder(metrics=self.metrics, service=self.logger.service)
        token = _metrics.begin(recorder)
        try:
            mode = classify(event, self.token_field)
            if mode is Mode.DIRECT:
                return self.run_direct(event, context)
            if mode is Mode.CALLBACK:
                from sfn_workers.callbacks import run_callback  # threads and reporting: only tokens need them

                return run_callback(self, event, context)
            from sfn_workers.batch import run_batch

            return run_batch(self, event, context)
        except BaseException as exc:
            _metrics.failed(recorder, exc)
            raise
        finally:
            _metrics.end(token, recorder)

    def run_direct(self, event: Any, lambda_context: Any) -> Any:
        """Direct mode: return the output, or raise so that the state sees the error name."""
        try:
            unit = self.unit_of(event)
        except Exception as exc:
            with _log.correlated(self.logger, self.correlation_keys(None, lambda_context)):
                self._fail_direct(exc)
        with _log.correlated(self.logger, self.correlation_keys(unit, lambda_context)):
            try:
                return self.process(unit, lambda_context).value
            except Exception as exc:
                self._fail_direct(exc)

    def _fail_direct(self, exc: Exception) -> NoReturn:
        name = error_name(exc)
        self.logger.error("task failed", extra={"error": name})
        failure = failure_for_direct_mode(exc)
        if failure is exc and not _str_works(exc):
            # The Lambda runtime calls str() for errorMessage: a stand-in of the same name whose
            # str() works, so that the state still sees the error instead of a crashed runtime.
            failure = failure_for_direct_mode(TaskFailure(name, clean_text(exc)))
        if failure is exc:
            raise exc
        raise failure from exc

    def unit_of(self, event: Any) -> Unit:
        """The unit of work in a direct or callback event (payload_field applied)."""
        try:
            return split_payload(event, self.token_field, self.payload_field)
        except KeyError as exc:
            from sfn_workers.errors import ValidationError

            raise ValidationError(f"the event has no field {self.payload_field!r} (payload_field)") from exc

    def correlation_keys(self, unit: Unit | None, lambda_context: Any, **extra: Any) -> dict[str, Any]:
        """The log keys of one unit of work: request id, execution, state, redacted token."""
        keys: dict[str, Any] = {}
        request_id = getattr(lambda_context, "aws_request_id", None)
        if request_id:
            keys["function_request_id"] = request_id
        if unit is not None:
            if unit.execution:
                keys["execution"] = unit.execution
            if unit.state:
                keys["state"] = unit.state
            if unit.token:
                keys["task_token"] = redact_token(unit.token)
        keys.update(extra)
        return keys

    # -- one unit of work, in the documented order ---------------------------------------------

    def process(
        self,
        unit: Unit,
        lambda_context: Any,
        heartbeat: Callable[[], None] | None = None,
        hand_off: Callable[[], None] | None = None,
        margin_ms: float | None = None,
    ) -> Output:
        """Run one unit of work through the steps; returns the (offloaded if needed) output."""
        ctx = self.context_for(unit, lambda_context, heartbeat, margin_ms, hand_off)
        reset = _current.set(ctx)
        try:
            if not self.tracing.enabled:  # the common case: no subsegments, no context managers
                value = self.signature.validate_input(self.resolve_input(unit.payload))
                return self.offload_output(self.call(value, ctx), unit, ctx)
            return self._traced(unit, ctx)
        finally:
            _current.reset(reset)

    def call(self, value: Any, ctx: TaskContext) -> Output:
        """The user's function on the validated input, once per idempotency key; its output checked."""
        if self.idempotency is not None:
            return self.idempotency.run(self, value, ctx)
        return self.signature.dump_output(self.signature.call(self.fn, value, ctx))

    def _traced(self, unit: Unit, ctx: TaskContext) -> Output:
        step = self.tracing.step
        with step("resolve_input", unit.execution, unit.state):
            payload = self.resolve_input(unit.payload)
        with step("validate_input", unit.execution, unit.state):
            value = self.signature.validate_input(payload)
        if self.idempotency is not None:
            with step("call", unit.execution, unit.state):
                output = self.idempotency.run(self, value, ctx)
        else:
            with step("call", unit.execution, unit.state):
                result = self.signature.call(self.fn, value, ctx)
            with step("validate_output", unit.execution, unit.state):
                output = self.signature.dump_output(result)
        with step("offload_output", unit.execution, unit.state):
            return self.offload_output(output, unit, ctx)

    def margin_ms(self, lambda_context: Any) -> tuple[float | None, float]:
        """(time left in ms or None outside Lambda, this invocation's timeout margin in ms)."""
        getter = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if getter is None:
            return None, float(self.settings.timeout_margin_ms)
        try:
            remaining = float(getter())
        except Exception:  # a broken test double: behave as outside Lambda
            return None, float(self.settings.timeout_margin_ms)
        configured = self.settings.timeout_margin_ms
        # effective_margin_ms, inlined for the warm path: at most a quarter of the time left
        return remaining, configured if configured <= remaining * MARGIN_SHARE else max(0.0, remaining * MARGIN_SHARE)

    def context_for(
        self,
        unit: Unit,
        lambda_context: Any,
        heartbeat: Callable[[], None] | None = None,
        margin_ms: float | None = None,
        hand_off: Callable[[], None] | None = None,
    ) -> TaskContext:
        deadline = None
        remaining, margin = self.margin_ms(lambda_context)
        if remaining is not None:
            seconds = (remaining - (margin if margin_ms is None else margin_ms)) / 1000.0
            deadline = Deadline(time.monotonic() + seconds)
        context: LambdaContext | None = lambda_context  # duck-typed: a protocol check costs a warm call
        if heartbeat is None:
            return TaskContext(unit.token, context, self.logger, deadline, unit.execution, unit.state)
        return TaskContext(unit.token, context, self.logger, deadline, unit.execution, unit.state, heartbeat, hand_off)

    def resolve_input(self, payload: Any) -> Any:
        """Replace every S3 pointer in the input by its value (no-op with offloading off)."""
        if self.offload is None or _flat_without_pointer(payload):
            return payload
        return self.offload.resolve(payload, self.clients)

    def offload_output(self, output: Output, unit: Unit, ctx: TaskContext) -> Output:
        """Move a large output to S3; without offloading, refuse one over the Step Functions limit."""
        offload = self.offload
        if offload is not None:
            if not offload.always and output.size <= offload.threshold_bytes:
                return output  # the warm path: small enough to stay inline
            scope = unit.execution or ctx.request_id or "local"
            return offload.offload(output, self.clients, scope)
        size = output.size
        if size > STATES_PAYLOAD_LIMIT:
            raise PayloadTooLarge(
                f"output is {size} bytes, over the Step Functions limit of {STATES_PAYLOAD_LIMIT}; "
                "enable offloading (offload=S3Offload(...)) or return less"
            )
        return output


class _Idempotency:
    """Powertools' idempotency around the call: the key is the validated input, the record the output.

    Inside the task rather than around the handler, because a replay in callback mode carries a
    new task token that must still be answered: the stored output is reported with it.
    """

    def __init__(self, store: BasePersistenceLayer, config: IdempotencyConfig) -> None:
        self.store = store
        self.config = config

    def run(self, task: Task[Any, Any], value: Any, ctx: TaskContext) -> Output:
        from aws_lambda_powertools.utilities.idempotency.base import IdempotencyHandler

        fresh: list[Output] = []

        @functools.wraps(task.fn)
        def call() -> Any:
            output = task.signature.dump_output(task.signature.call(task.fn, value, ctx))
            fresh.append(output)
            return output.value

        if ctx.lambda_context is not None:
            self.config.register_lambda_context(ctx.lambda_context)  # type: ignore[arg-type]  # duck-typed
        stored = IdempotencyHandler(
            function=call,
            function_payload=task.signature.input_key(value),
            config=self.config,
            persistence_store=self.store,
            function_args=(),
            function_kwargs={},
        ).handle()
        return fresh[0] if fresh else Output.of(stored)


def _idempotency(
    fn: Callable[..., Any], store: BasePersistenceLayer | None, config: IdempotencyConfig | None
) -> _Idempotency | None:
    if store is None:
        if config is not None:
            raise ConfigurationError("idempotency_config needs idempotency=<a Powertools persistence layer>")
        return None
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig

    if not isinstance(store, BasePersistenceLayer):
        raise ConfigurationError(
            f"idempotency must be a Powertools persistence layer (e.g. DynamoDBPersistenceLayer), not {store!r}"
        )
    if config is not None and not isinstance(config, IdempotencyConfig):
        raise ConfigurationError(f"idempotency_config must be a Powertools IdempotencyConfig, not {config!r}")
    return _Idempotency(store, config or IdempotencyConfig())


def _flat_without_pointer(payload: Any) -> bool:
    """A flat object that is not a pointer holds none: the warm path skips the resolver for it."""
    if type(payload) is not dict or POINTER_FIELD in payload:
        return False
    for value in payload.values():
        kind = type(value)
        if kind is dict or kind is list or not (kind is str or kind is int or kind is bool or kind is float):
            return False
    return True


def _str_works(exc: BaseException) -> bool:
    try:
        return isinstance(str(exc), str)
    except Exception:
        return False


def _injected(clients: Mapping[str, Any] | Clients | None) -> Clients | None:
    if not clients:
        return None
    from sfn_workers._aws import Clients

    return clients if isinstance(clients, Clients) else Clients(clients)


def _offloader(option: S3Offload | bool | None) -> S3Offload | None:
    if option is None or option is True:
        return S3Offload()
    if option is False:
        return None
    if isinstance(option, S3Offload):
        return option
    raise ConfigurationError(f"offload must be an S3Offload, True or False, not {option!r}")


class TaskHandler(Protocol[P, R_co]):
    """What ``@task`` returns: a plain function ``handler(event, context)`` for the Lambda runtime.

    ``handler.__wrapped__`` is the decorated function (for unit tests that skip the pipeline) and
    ``handler.task`` the :class:`Task` that runs the invocations (settings, clients, logger).
    """

    @property
    def __wrapped__(self) -> Callable[P, R_co]: ...

    @property
    def task(self) -> Task[P, Any]: ...

    @property
    def __name__(self) -> str: ...  # the decorated function's, as frameworks and logs expect

    def __call__(self, event: Any, context: Any = None, /) -> Any: ...


def _handler_for(runner: Task[P, R]) -> TaskHandler[P, R]:
    def handler(event: Any, context: Any = None) -> Any:
        return runner(event, context)

    # Annotations are not copied: the handler takes (event, context), not the function's input.
    functools.update_wrapper(handler, runner.fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    handler.task = runner  # type: ignore[attr-defined]
    return handler  # type: ignore[return-value]


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
    timeout_margin_ms: float | None = None,
    clients: Mapping[str, Any] | Clients | None = None,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    idempotency: BasePersistenceLayer | None = None,
    idempotency_config: IdempotencyConfig | None = None,
) -> Callable[[Callable[P, R]], TaskHandler[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    offload: S3Offload | bool | None = None,
    token_field: str | None = None,
    payload_field: str | None = None,
    heartbeat_seconds: float | None = None,
    timeout_margin_ms: float | None = None,
    clients: Mapping[str, Any] | Clients | None = None,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    idempotency: BasePersistenceLayer | None = None,
    idempotency_config: IdempotencyConfig | None = None,
) -> TaskHandler[P, R] | Callable[[Callable[P, R]], TaskHandler[P, R]]:
    """Turn ``fn(payload: In, ctx: TaskContext) -> Out`` into a Lambda handler (a plain function).

    Works bare (``@task``) and with options (``@task(offload=S3Offload(keep=["orderId"]))``).

    Args:
        offload: an :class:`S3Offload`, or False to neither resolve nor write S3 pointers.
            Default: ``S3Offload()`` configured from ``SFN_WORKERS_*`` variables.
        token_field: where the task token is in the event (default ``"taskToken"``).
        payload_field: take the input from this field of the event (default: the event less
            the token field).
        heartbeat_seconds: send SendTaskHeartbeat this often in callback mode (default and 0:
            off; ``SFN_WORKERS_HEARTBEAT_SECONDS``).
        timeout_margin_ms: report ``WorkerTimeout`` this long before the Lambda times out
            (default 1500, at most a quarter of the invocation's time; ``SFN_WORKERS_TIMEOUT_MARGIN_MS``).
        clients: boto3 clients to use instead of creating them (``{"s3": ..., "stepfunctions": ...}``).
        logger: the Powertools Logger for ``ctx.logger`` and the framework's lines (default: one
            of service ``POWERTOOLS_SERVICE_NAME``, else ``sfn-workers``).
        metrics: a Powertools ``Metrics`` whose namespace the framework's own metrics use (one EMF
            document per invocation; default namespace ``POWERTOOLS_METRICS_NAMESPACE``, else
            ``sfn-workers``). See docs/operations.md.
        idempotency: a Powertools persistence layer: the function runs at most once per key of
            the validated input; a replay gets the stored output.
        idempotency_config: Powertools' ``IdempotencyConfig`` (``event_key_jmespath`` applies to
            the validated input).
    """

    def decorate(func: Callable[P, R]) -> TaskHandler[P, R]:
        return _handler_for(
            Task(
                func,
                offload=offload,
                token_field=token_field,
                payload_field=payload_field,
                heartbeat_seconds=heartbeat_seconds,
                timeout_margin_ms=timeout_margin_ms,
                clients=clients,
                logger=logger,
                metrics=metrics,
                idempotency=idempotency,
                idempotency_config=idempotency_config,
            )
        )

    if fn is not None:
        return decorate(fn)
    return decorate
