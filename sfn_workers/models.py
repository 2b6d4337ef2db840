"""Typed input and output: reading a task function's annotations into pydantic adapters, once.

The adapters are built at decoration time (cold start) so that a warm invocation pays only for
validating and dumping, never for building a schema.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from sfn_workers.context import TaskContext
from sfn_workers.errors import ConfigurationError, OutputValidationError, ValidationError

__all__ = ["Output", "Signature", "inspect_function", "json_text"]

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


@dataclass(frozen=True, slots=True)
class Signature:
    """How to call a task function: what it takes, what it returns, how to check both."""

    takes_input: bool
    ctx_parameter: str | None
    input_adapter: TypeAdapter[Any] | None
    output_adapter: TypeAdapter[Any] | None
    output_model: type[BaseModel] | None

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
                return Output(serializer.to_python(result, mode="json"), data=serializer.to_json(result))
            if self.output_adapter is not None:
                adapter = self.output_adapter
                checked = adapter.validate_python(result)
                return Output(adapter.dump_python(checked, mode="json"), data=adapter.dump_json(checked))
            return Output.of(result)  # unannotated: must already be plain JSON
        except PydanticValidationError as exc:
            raise OutputValidationError(_describe_errors(exc)) from exc
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise OutputValidationError(f"output is not JSON: {exc}") from exc

    def call(self, fn: Callable[..., Any], value: Any, ctx: TaskContext) -> Any:
        if self.ctx_parameter is None:
            return fn(value) if self.takes_input else fn()
        if self.takes_input:
            return fn(value, **{self.ctx_parameter: ctx})
        return fn(**{self.ctx_parameter: ctx})


def _is_context(annotation: Any) -> bool:
    return annotation is TaskContext or (isinstance(annotation, type) and issubclass(annotation, TaskContext))


def inspect_function(fn: Callable[..., Any]) -> Signature:
    """Read ``fn(payload: In, ctx: TaskContext) -> Out`` into a :class:`Signature`.

    The input is the first parameter that is not the context; the context is the parameter
    annotated ``TaskContext`` or named ``ctx``. Unannotated input or output means raw JSON.
    """
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
    return Signature(takes_input, ctx_parameter, input_adapter, output_adapter, output_model)
