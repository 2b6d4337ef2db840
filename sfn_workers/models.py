"""Typed input and output: reading a task function's annotations into pydantic adapters, once.

The adapters are built at decoration time (cold start) so that a warm invocation pays only for
validating and dumping, never for building a schema.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import threading
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from sfn_workers.context import TaskContext
from sfn_workers.errors import ConfigurationError, OutputValidationError, ValidationError

__all__ = ["HANDLER_DECORATORS", "Output", "Signature", "inspect_function", "json_text", "run_coroutine"]

_EMPTY = inspect.Parameter.empty


def json_text(value: Any) -> str:
    """Compact JSON as Step Functions writes it; its UTF-8 length is what the payload limit counts."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Output:
    """A JSON-ready output and its serialised form, made once and reused for size and reporting.

    Built from JSON bytes (what pydantic's serialiser writes) or from text; the other form is
    derived on first use, so a caller that needs only one never pays for both.
    """

    __slots__ = ("_data", "_text", "value")

    def __init__(self, value: Any, text: str | None = None, data: bytes | None = None) -> None:
        if text is None and data is None:
            raise ValueError("Output needs its JSON text or bytes")
        self.value = value
        self._text = text
        self._data = data

    @property
    def text(self) -> str:
        """Compact JSON text (what SendTaskSuccess sends)."""
        if self._text is None:
            assert self._data is not None
            self._text = self._data.decode("utf-8")
        return self._text

    @property
    def data(self) -> bytes:
        """The JSON text as UTF-8 bytes."""
        if self._data is None:
            assert self._text is not None
            self._data = self._text.encode("utf-8")
        return self._data

    @property
    def size(self) -> int:
        """UTF-8 bytes of the JSON text: the number the 256 KiB limit is about."""
        return len(self.data)

    @classmethod
    def of(cls, value: Any) -> Output:
        """Serialise a JSON-ready value once."""
        return cls(value, text=json_text(value))

    def __repr__(self) -> str:
        return f"Output({self.size} bytes)"


def _finite(output: Output) -> Output:
    """``output``, unless it holds NaN or Infinity: pydantic writes those as ``null``, json.dumps
    as invalid JSON; Step Functions would get neither what the function returned nor valid JSON."""
    stack = [output.value]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or +-Infinity (for finite numbers it is 0.0)
                raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        elif kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
    return output


def _describe_errors(exc: PydanticValidationError) -> str:
    # Input values are left out: they may hold personal data that would then travel in an error
    # cause through Step Functions' history.
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    count = len(parts)
    title = exc.title
    return f"{count} validation error{'s' if count != 1 else ''} for {title}: " + "; ".join(parts)


class Signature:
    """How to call a task function: what it takes, what it returns, how to check both.

    Built once per handler at decoration and never changed. A plain class, not a dataclass:
    every cold start builds this module, and a frozen dataclass costs ~0.4 ms to create.
    """

    __slots__ = (
        "ctx_parameter",
        "input_adapter",
        "input_keyword",
        "is_async",
        "output_adapter",
        "output_model",
        "takes_input",
    )

    def __init__(
        self,
        takes_input: bool,
        ctx_parameter: str | None,
        input_adapter: TypeAdapter[Any] | None,
        output_adapter: TypeAdapter[Any] | None,
        output_model: type[BaseModel] | None,
        input_keyword: str | None = None,  # pass the input by this keyword (decorators such as idempotent_function)
        is_async: bool = False,
    ) -> None:
        self.takes_input = takes_input
        self.ctx_parameter = ctx_parameter
        self.input_adapter = input_adapter
        self.output_adapter = output_adapter
        self.output_model = output_model
        self.input_keyword = input_keyword
        self.is_async = is_async

    def __repr__(self) -> str:
        return f"Signature({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)})"

    def validate_input(self, payload: Any) -> Any:
        """The payload as the function's input type; :class:`ValidationError` if it does not fit."""
        if self.input_adapter is None:
            return payload
        try:
            return self.input_adapter.validate_python(payload)
        except PydanticValidationError as exc:
            raise ValidationError(_describe_errors(exc)) from exc

    def dump_output(self, result: Any) -> Output:
        """The function's result as JSON; :class:`OutputValidationError` if it does not fit or is not JSON."""
        try:
            if self.output_model is not None and type(result) is self.output_model:
                # Already a validated instance: serialise it straight away, in pydantic's core.
                serializer = result.__pydantic_serializer__
                return _finite(Output(serializer.to_python(result, mode="json"), data=serializer.to_json(result)))
            if self.output_adapter is not None:
                adapter = self.output_adapter
                checked = adapter.validate_python(result)
                return _finite(Output(adapter.dump_python(checked, mode="json"), data=adapter.dump_json(checked)))
            return Output.of(result)  # unannotated: must already be plain JSON (json_text refuses NaN)
        except PydanticValidationError as exc:
            raise OutputValidationError(_describe_errors(exc)) from exc
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise OutputValidationError(f"output is not JSON: {exc}") from exc

    def call(self, fn: Callable[..., Any], value: Any, ctx: TaskContext) -> Any:
        """Call ``fn`` with the input and ctx as it declares them; an ``async def`` is awaited."""
        kwargs = {} if self.ctx_parameter is None else {self.ctx_parameter: ctx}
        if not self.takes_input:
            result = fn(**kwargs)
        elif self.input_keyword is not None:
            result = fn(**kwargs, **{self.input_keyword: value})
        else:
            result = fn(value, **kwargs)
        if self.is_async or inspect.iscoroutine(result):
            return run_coroutine(result)
        return result

    def input_key(self, value: Any) -> Any:
        """The validated input as JSON-ready data (what an idempotency key is computed from)."""
        if self.input_adapter is None:
            return value
        return self.input_adapter.dump_python(value, mode="json")


_loops = threading.local()


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run an ``async def`` task to completion on this thread's cached event loop.

    One loop per thread, kept across warm invocations, so that clients bound to a loop (aiohttp
    sessions, aioboto3) created in one invocation still work in the next; ``asyncio.run`` would
    close the loop after each. Called from inside a running loop (a test that is itself async),
    the coroutine runs on a helper thread's loop instead, since a loop cannot be re-entered.
    """
    import asyncio  # ~40 ms of cold start: only async tasks pay for it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = _loops.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = run_coroutine(coro)
        except BaseException as exc:
            outcome["error"] = exc

    # The invocation's context (log keys, metrics recorder) goes with the coroutine's thread.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="sfn-workers-async")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _is_context(annotation: Any) -> bool:
    return annotation is TaskContext or (isinstance(annotation, type) and issubclass(annotation, TaskContext))


#: Powertools' Lambda handler decorators: they wrap ``(event, context)`` handlers and go above @task.
HANDLER_DECORATORS = (
    "@logger.inject_lambda_context, @tracer.capture_lambda_handler, @metrics.log_metrics, "
    "@validator, @idempotent, @event_parser, @event_source"
)


def check_wrappers(fn: Callable[..., Any]) -> None:
    """Refuse, at decoration, a Lambda handler decorator placed between @task and the function.

    Such a wrapper takes ``(event, context)``: called with the validated input and ``ctx`` it would
    fail on every event (a TypeError on the first call) instead of at import.
    """
    layer: Any = fn
    while hasattr(layer, "__wrapped__"):
        try:
            params = list(inspect.signature(layer, follow_wrapped=False).parameters.values())
        except (TypeError, ValueError):
            return
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) >= 2 and positional[1] == "context":
            code = getattr(layer, "__code__", None)
            where = getattr(code, "co_qualname", None) or type(layer).__qualname__
            raise ConfigurationError(
                f"{getattr(fn, '__qualname__', fn)!r} is wrapped by a Lambda handler decorator ({where}) below "
                f"@task. Handler decorators ({HANDLER_DECORATORS}) take (event, context): put them above "
                "@task, which turns the function into that handler; decorators that take the function's own "
                "arguments (@tracer.capture_method, @idempotent_function) may stay below"
            )
        layer = layer.__wrapped__


def _input_keyword(fn: Callable[..., Any], name: str) -> str | None:
    """The keyword to pass the input by when ``fn`` is a decorator's ``(*args, **kwargs)`` wrapper."""
    if not hasattr(fn, "__wrapped__"):
        return None
    try:
        params = inspect.signature(fn, follow_wrapped=False).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params) or any(
        p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params
    ):
        return name
    return None


def _is_async(fn: Callable[..., Any]) -> bool:
    layer: Any = fn
    while layer is not None:
        if inspect.iscoroutinefunction(layer):
            return True
        layer = getattr(layer, "__wrapped__", None)
    return False


def inspect_function(fn: Callable[..., Any]) -> Signature:
    """Read ``fn(payload: In, ctx: TaskContext) -> Out`` into a :class:`Signature`.

    The input is the first parameter that is not the context; the context is the parameter
    annotated ``TaskContext`` or named ``ctx``. Unannotated input or output means raw JSON.
    """
    check_wrappers(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward reference: say which function
        raise ConfigurationError(f"cannot read the type annotations of {fn.__qualname__}: {exc}") from exc
    params = list(inspect.signature(fn).parameters.values())
    ctx_parameter: str | None = None
    inputs: list[inspect.Parameter] = []
    for param in params:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if _is_context(hints.get(param.name)) or (param.name == "ctx" and param.name not in hints):
            ctx_parameter = param.name
        else:
            inputs.append(param)
    required = [p for p in inputs if p.default is _EMPTY]
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        raise ConfigurationError(
            f"{fn.__qualname__} takes one input and optionally ctx: TaskContext; it requires {names}"
        )
    takes_input = bool(inputs)
    if takes_input and inputs[0].kind is inspect.Parameter.KEYWORD_ONLY:
        raise ConfigurationError(f"{fn.__qualname__}: the input parameter must be positional")

    input_type = hints.get(inputs[0].name, Any) if takes_input else Any
    output_type = hints.get("return", Any)
    output_model = output_type if isinstance(output_type, type) and issubclass(output_type, BaseModel) else None
    try:
        input_adapter = None if input_type is Any else TypeAdapter(input_type)
        output_adapter = None if output_type is Any else TypeAdapter(output_type)
    except Exception as exc:  # pydantic cannot build a schema for the annotation
        raise ConfigurationError(f"{fn.__qualname__}: pydantic cannot use its annotations: {exc}") from exc
    keyword = _input_keyword(fn, inputs[0].name) if takes_input else None
    if keyword is not None and inputs[0].kind is inspect.Parameter.POSITIONAL_ONLY:
        keyword = None
    return Signature(takes_input, ctx_parameter, input_adapter, output_adapter, output_model, keyword, _is_async(fn))
