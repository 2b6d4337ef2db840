"""The two query languages as objects: how a state's data-flow fields are evaluated.

A state's query language is chosen once, at parse time (``StateSpec.query``), so the state modules
never ask "JSONPath or JSONata?": they call one interface (input, arguments, result handling,
output, Assign, conditions, field values) and the object answers with its language's rules.

- JSONPath: ``InputPath`` -> ``Parameters`` -> (work) -> ``ResultSelector`` -> ``ResultPath`` ->
  ``OutputPath``; payload templates with ``key.$`` paths and intrinsic functions; ``*Path`` fields.
- JSONata: ``Arguments`` -> (work) -> ``Output``; ``{% %}`` expressions anywhere, with ``$states``
  (input, result, errorOutput, context) and the variables in scope.

Both evaluate ``Assign`` after the output is computed and store it last, as AWS orders it. Errors
keep AWS's names: ``States.Runtime`` for JSONPath, ``States.QueryEvaluationError`` for JSONata.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import StatesError
from .intrinsics import compile_intrinsic
from .paths import JsonPath, PathError, compile_path, set_reference_path
from .templates import (
    UNDEFINED,
    clock_functions,
    compile_jsonata_template,
    compile_template,
    is_jsonata,
    jsonata_bindings,
)

Template = Callable[[Callable[[JsonPath], Any]], Any]
JsonataTemplate = Callable[[Mapping[str, Any]], Any]

__all__ = [
    "JSONATA",
    "JSONPATH",
    "CatchFields",
    "DataFlow",
    "Field",
    "Found",
    "Frame",
    "QueryLanguage",
    "dumps",
    "json_type",
]

dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Field:
    """One evaluated field of a state as written (``Parameters``, ``Output``, ``Seconds``, ...).

    Its template is compiled on first use and kept: a definition is parsed once and run many times.
    """

    __slots__ = ("_jsonata", "_jsonpath", "name", "value")

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value
        self._jsonpath: Template | None = None
        self._jsonata: JsonataTemplate | None = None

    def jsonpath(self) -> Template:
        if self._jsonpath is None:
            self._jsonpath = compile_template(self.value)
        return self._jsonpath

    def jsonata(self) -> JsonataTemplate:
        if self._jsonata is None:
            self._jsonata = compile_jsonata_template(self.value, self.name)
        return self._jsonata


@dataclass(frozen=True, slots=True)
class DataFlow:
    """A state's data-flow fields; absent paths are ``"$"`` (no change), ``None`` is JSON null."""

    input_path: str | None = "$"
    output_path: str | None = "$"
    result_path: str | None = "$"
    parameters: Field | None = None
    result_selector: Field | None = None
    arguments: Field | None = None
    output: Field | None = None
    assign: Field | None = None

    @property
    def plain(self) -> bool:
        """No JSONPath result handling: the output is the result as it is (the common Task)."""
        return (
            self.result_selector is None and self.assign is None and self.result_path == "$" and self.output_path == "$"
        )


@dataclass(frozen=True, slots=True)
class Found:
    """A field's value and, when it was read through a ``*Path`` field, that path (for messages)."""

    value: Any
    path: str | None = None


class CatchFields(Protocol):
    """What a Catcher gives its query language (``specs.Catcher``)."""

    @property
    def result_path(self) -> str | None: ...

    @property
    def assign(self) -> Field | None: ...

    @property
    def output(self) -> Field | None: ...


class Frame(Protocol):
    """What an evaluation needs from the running state (the run loop's ``StateRun``)."""

    @property
    def state_name(self) -> str: ...

    def context(self) -> dict[str, Any]: ...

    def lookup(self, name: str) -> Any: ...

    def variables(self) -> dict[str, Any]: ...

    def now_millis(self) -> int: ...

    def store(self, assigned: Mapping[str, Any] | None) -> None: ...


class QueryLanguage(Protocol):
    """One query language's evaluation of a state's fields (see the module doc)."""

    name: str
    error: str  # the error name of a failed evaluation

    def input(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        """What the state's rules and paths see (JSONPath: after InputPath)."""
        ...

    def arguments(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        """What the state's work receives (Parameters after InputPath / Arguments)."""
        ...

    def evaluate(self, frame: Frame, fld: Field, raw: Any, doc: Any) -> Any:
        """A payload field (ItemSelector, ItemReader's parameters, ...) over ``doc`` / ``$states.input``."""
        ...

    def read(self, frame: Frame, raw: Any, doc: Any, fld: Field | None, path: str | None) -> Found | None:
        """A value field that may be a literal, an expression or a ``*Path`` (Seconds, MaxConcurrency, ...)."""
        ...

    def finish(self, frame: Frame, flow: DataFlow, raw: Any, result: Any, default_output: Any = UNDEFINED) -> Any:
        """The state's output from its result (ResultSelector, ResultPath, OutputPath / Output) and Assign."""
        ...

    def passthrough(
        self,
        frame: Frame,
        flow: DataFlow,
        raw: Any,
        value: Any,
        *,
        assign: Field | None,
        output: Field | None,
        result: Any = UNDEFINED,
        pause: Callable[[], None] | None = None,
    ) -> Any:
        """The output of a state without a result (Choice, Wait, Succeed); ``pause`` runs between Assign and output."""
        ...

    def catch(self, frame: Frame, raw: Any, error_output: Mapping[str, Any], catcher: CatchFields) -> Any:
        """The output a Catcher hands to its Next state (ResultPath / Output) and its Assign."""
        ...

    def conditions(self, frame: Frame, raw: Any, value: Any) -> Callable[[Any], bool]:
        """A test of one Choice rule (compiled rule / Condition) against this state's input."""
        ...

    def items(self, frame: Frame, flow: DataFlow, raw: Any, items: Field | None, items_path: str) -> tuple[Any, Any]:
        """(the Map's items, the document ItemSelector reads)."""
        ...


def _resolver(frame: Frame, doc: Any) -> Callable[[JsonPath], Any]:
    ctx: list[Any] = []

    def resolve(p: JsonPath) -> Any:
        if p.root == "$":
            return p.get(doc)
        if p.root == "$$":
            if not ctx:
                ctx.append(frame.context())
            return p.get(ctx[0])
        return p.get(frame.lookup(p.root[1:]))

    return resolve


def json_type(v: Any) -> str:
    if v is None or v is UNDEFINED:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _result_path_failure(path: str, raw: Any, exc: Exception) -> StatesError:
    """ResultPath cannot be applied to the state's input (e.g. ``$.error`` on a string item)."""
    text = dumps(raw)
    shown = text if len(text) <= 200 else text[:200] + "..."
    return StatesError("States.ResultPathMatchFailure", f"Unable to apply ResultPath '{path}' to input {shown}: {exc}")


class _JsonPath:
    name = "JSONPath"
    error = "States.Runtime"

    @staticmethod
    def _path(frame: Frame, path: str | None, doc: Any) -> Any:
        if path == "$":
            return doc
        if path is None:
            return {}
        try:
            return _resolver(frame, doc)(compile_path(path))
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{path}' : {exc}") from exc

    @staticmethod
    def _template(frame: Frame, fld: Field | None, doc: Any) -> Any:
        return None if fld is None else fld.jsonpath()(_resolver(frame, doc))

    @staticmethod
    def _set(raw: Any, path: str | None, value: Any) -> Any:
        if path is None:
            return raw
        if path == "$":
            return value
        try:
            return set_reference_path(raw, compile_path(path), value)
        except PathError as exc:
            raise _result_path_failure(path, raw, exc) from exc

    def input(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        return self._path(frame, flow.input_path, raw)

    def arguments(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        if flow.parameters is None and flow.input_path == "$":
            return raw
        value = self._path(frame, flow.input_path, raw)
        return value if flow.parameters is None else self._template(frame, flow.parameters, value)

    def evaluate(self, frame: Frame, fld: Field, raw: Any, doc: Any) -> Any:
        return self._template(frame, fld, doc)

    def read(self, frame: Frame, raw: Any, doc: Any, fld: Field | None, path: str | None) -> Found | None:
        if fld is not None:
            return Found(fld.value)
        if path is None:
            return None
        resolve = _resolver(frame, doc)
        try:
            if path.startswith("States."):
                return Found(compile_intrinsic(path).evaluate(resolve), path)
            return Found(resolve(compile_path(path)), path)
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{path}' : {exc}") from exc

    def finish(self, frame: Frame, flow: DataFlow, raw: Any, result: Any, default_output: Any = UNDEFINED) -> Any:
        if flow.plain:
            return result
        if flow.result_selector is not None:
            result = self._template(frame, flow.result_selector, result)
        assigned = self._template(frame, flow.assign, result)
        out = self._path(frame, flow.output_path, self._set(raw, flow.result_path, result))
        frame.store(assigned)
        return out

    def passthrough(
        self,
        frame: Frame,
        flow: DataFlow,
        raw: Any,
        value: Any,
        *,
        assign: Field | None,
        output: Field | None,
        result: Any = UNDEFINED,
        pause: Callable[[], None] | None = None,
    ) -> Any:
        assigned = self._template(frame, assign, value)
        if pause is not None:
            pause()
        out = self._path(frame, flow.output_path, value)
        frame.store(assigned)
        return out

    def catch(self, frame: Frame, raw: Any, error_output: Mapping[str, Any], catcher: CatchFields) -> Any:
        assigned = self._template(frame, catcher.assign, error_output)
        out = self._set(raw, catcher.result_path, error_output)
        frame.store(assigned)
        return out

    def conditions(self, frame: Frame, raw: Any, value: Any) -> Callable[[Any], bool]:
        resolve = _resolver(frame, value)
        return lambda rule: bool(rule(resolve))

    def items(self, frame: Frame, flow: DataFlow, raw: Any, items: Field | None, items_path: str) -> tuple[Any, Any]:
        doc = self._path(frame, flow.input_path, raw)
        try:
            found = _resolver(frame, doc)(compile_path(items_path))
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{items_path}' : {exc}") from exc
        if not isinstance(found, list):
            raise StatesError(
                "States.Runtime",
                f"Invalid path '{items_path}': the Map state's items must be an array, not {json_type(found)}",
            )
        return found, doc


class _Jsonata:
    name = "JSONata"
    error = "States.QueryEvaluationError"

    @staticmethod
    def bindings(frame: Frame, raw: Any, result: Any = UNDEFINED, error_output: Any = UNDEFINED) -> dict[str, Any]:
        states: dict[str, Any] = {"input": raw, "context": frame.context()}
        if result is not UNDEFINED:
            states["result"] = result
        if error_output is not UNDEFINED:
            states["errorOutput"] = error_output
        b = clock_functions(frame.now_millis())
        b.update(jsonata_bindings(frame.variables()))
        b["states"] = jsonata_bindings({"s": states})["s"]
        return b

    def input(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        return raw

    def arguments(self, frame: Frame, flow: DataFlow, raw: Any) -> Any:
        return raw if flow.arguments is None else flow.arguments.jsonata()(self.bindings(frame, raw))

    def evaluate(self, frame: Frame, fld: Field, raw: Any, doc: Any) -> Any:
        return fld.jsonata()(self.bindings(frame, raw))

    def read(self, frame: Frame, raw: Any, doc: Any, fld: Field | None, path: str | None) -> Found | None:
        if fld is None:
            return None
        if isinstance(fld.value, str | list | dict):
            return Found(fld.jsonata()(self.bindings(frame, raw)))
        return Found(fld.value)

    def _tail(
        self,
        frame: Frame,
        bindings: Mapping[str, Any],
        assign: Field | None,
        output: Field | None,
        default_output: Any,
    ) -> Any:
        assigned = None if assign is None else assign.jsonata()(bindings)
        out = default_output if output is None else output.jsonata()(bindings)
        frame.store(assigned)
        return out

    def finish(self, frame: Frame, flow: DataFlow, raw: Any, result: Any, default_output: Any = UNDEFINED) -> Any:
        default = result if default_output is UNDEFINED else default_output
        if flow.assign is None and flow.output is None:
            return default
        return self._tail(frame, self.bindings(frame, raw, result), flow.assign, flow.output, default)

    def passthrough(
        self,
        frame: Frame,
        flow: DataFlow,
        raw: Any,
        value: Any,
        *,
        assign: Field | None,
        output: Field | None,
        result: Any = UNDEFINED,
        pause: Callable[[], None] | None = None,
    ) -> Any:
        if pause is not None:
            pause()
        if assign is None and output is None:
            return raw
        return self._tail(frame, self.bindings(frame, raw, result), assign, output, raw)

    def catch(self, frame: Frame, raw: Any, error_output: Mapping[str, Any], catcher: CatchFields) -> Any:
        bindings = self.bindings(frame, raw, None, error_output)  # $states.result is null here, as on AWS
        return self._tail(frame, bindings, catcher.assign, catcher.output, error_output)

    def conditions(self, frame: Frame, raw: Any, value: Any) -> Callable[[Any], bool]:
        bindings = self.bindings(frame, raw)

        def test(condition: Any) -> bool:
            ok = condition.jsonata()(bindings) if isinstance(condition, Field) else condition
            if not isinstance(ok, bool):
                text = condition.value if isinstance(condition, Field) else condition
                raise StatesError(
                    "States.QueryEvaluationError",
                    f"The JSONata expression '{text}' specified for the field 'Condition' returned an unexpected "
                    f"result type. Expected 'boolean', but was '{json_type(ok)}' for value: {dumps(ok)}",
                )
            return ok

        return test

    def items(self, frame: Frame, flow: DataFlow, raw: Any, items: Field | None, items_path: str) -> tuple[Any, Any]:
        if items is None:
            if not isinstance(raw, list):
                raise StatesError(
                    "States.QueryEvaluationError", f"Map state input must be an array but was: {dumps(raw)}"
                )
            return raw, raw
        found = self.read(frame, raw, raw, items, None)
        value = None if found is None else found.value
        if not isinstance(value, list):
            text = items.value
            expr = text[2:-2].strip() if is_jsonata(text) else dumps(text)
            raise StatesError(
                "States.QueryEvaluationError",
                f"The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected "
                f"result type. Expected 'array', but was '{json_type(value)}' for value: {dumps(value)}",
            )
        return value, raw


JSONPATH: QueryLanguage = _JsonPath()
JSONATA: QueryLanguage = _Jsonata()
