"""TestState: run one state on the interpreter and answer what AWS answers (``output``, ``error``,
``cause``, ``nextState``, ``status`` SUCCEEDED/FAILED/RETRIABLE/CAUGHT_ERROR, and with
``inspectionLevel`` DEBUG or TRACE the ``inspectionData``).

The state runs inside a small state machine: a Pass that assigns ``variables`` (if given), the
state itself without its Retry (a retrier that matches the error makes the answer RETRIABLE, as
AWS does, instead of retrying), and a Succeed standing in for each state it can go to. ``mock``
answers a Task instead of its integration; ``context`` becomes the ``$$`` fields it names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.machines import DEFINITION_MAX_CHARS
from sfn_workers.local.api.protocol import ApiError, ApiRequest, parse_document
from sfn_workers.local.asl import DefinitionError, Execution, VirtualClock, parse_definition
from sfn_workers.local.mock_config import MockedIntegrations, TestCase, task_resources

__all__ = ["ACTIONS"]

_LEVELS = ("INFO", "DEBUG", "TRACE")
_VARIABLES_STATE = "TestState.Variables"
_PAYLOAD_MAX = 262_144


def _json_member(request: Mapping[str, Any], name: str, default: Any, code: str = "ValidationException") -> Any:
    text = request.get(name)
    if text is None:
        return default
    if not isinstance(text, str):
        raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected a string")
    try:
        return parse_document(text)
    except ValueError as exc:
        raise ApiError(code, f"Invalid {name}: {exc}") from None


def _targets(state: Mapping[str, Any]) -> list[str]:
    found = [state.get("Next"), state.get("Default")]
    found += [c.get("Next") for c in state.get("Choices") or [] if isinstance(c, Mapping)]
    found += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, Mapping)]
    return [t for t in dict.fromkeys(found) if isinstance(t, str)]


def _state_of(definition: Any, name: str | None) -> tuple[str, dict[str, Any], str | None]:
    """(state name, state, query language of the machine) from TestState's ``definition``."""
    if not isinstance(definition, Mapping):
        raise ApiError("InvalidDefinition", "Invalid State Machine Definition: the definition must be a JSON object")
    if name is None:
        return "TestState", dict(definition), None
    states = definition.get("States")
    if not isinstance(states, Mapping) or not isinstance(states.get(name), Mapping):
        raise ApiError("InvalidDefinition", f"Invalid State Machine Definition: no state named '{name}'")
    return name, dict(states[name]), definition.get("QueryLanguage")


def _machine(name: str, state: dict[str, Any], language: str | None, variables: Any) -> dict[str, Any]:
    tested = {k: v for k, v in state.items() if k != "Retry"}
    states: dict[str, Any] = {name: tested}
    for target in _targets(state):
        if target != name:
            states[target] = {"Type": "Succeed"}
    start = name
    if variables:
        states[_VARIABLES_STATE] = {"Type": "Pass", "Assign": variables, "Next": name}
        start = _VARIABLES_STATE
    machine: dict[str, Any] = {"StartAt": start, "States": states}
    if language:
        machine["QueryLanguage"] = language
    return machine


def _mock(request: Mapping[str, Any], name: str) -> TestCase | None:
    mock = request.get("mock")
    if not isinstance(mock, Mapping):
        return None
    if isinstance(mock.get("errorOutput"), Mapping):
        failure = mock["errorOutput"]
        return TestCase.always(name, "Throw", {"Error": failure.get("error") or "", "Cause": failure.get("cause")})
    return TestCase.always(name, "Return", _json_member(mock, "result", None))


def _retriable(state: Mapping[str, Any], error: str | None, attempts: int) -> bool:
    """A retrier matches ``error`` and has attempts left (retriers come before catchers)."""
    for retrier in state.get("Retry") or []:
        errors = retrier.get("ErrorEquals") or []
        if error in errors or ("States.ALL" in errors and error != "States.Runtime"):
            return attempts < int(retrier.get("MaxAttempts", 3))
    return False


def _details(event: Mapping[str, Any]) -> dict[str, Any]:
    return next((dict(v) for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, Mapping)), {})


def _inspection(events: list[dict[str, Any]], language: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for event in events:
        kind, details = event["type"], _details(event)
        if kind.endswith("StateEntered"):
            data["input"] = details.get("input")
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            data["afterArguments" if language == "JSONata" else "afterParameters"] = details.get(
                "parameters", details.get("input")
            )
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
            data["result"] = details.get("output")
        elif kind.endswith("StateExited"):
            data["afterResultPath"] = details.get("output")
            if details.get("assignedVariables"):
                data["variables"] = json.dumps(details["assignedVariables"])
    return data


def _answer(result: Any, name: str, state: Mapping[str, Any], attempts: int) -> dict[str, Any]:
    history = result.history
    entered = [i for i, e in enumerate(history) if _details(e).get("name") == name and e["type"].endswith("Entered")]
    mine = history[entered[0] :] if entered else []
    after = next((e for e in mine if e["type"].endswith("Entered") and _details(e).get("name") != name), None)
    own = [e for e in mine if after is None or e["id"] < after["id"]]
    failure = next(
        (_details(e) for e in own if e["type"].endswith(("Failed", "TimedOut")) and "error" in _details(e)), {}
    )
    error = failure.get("error") or result.error
    answer: dict[str, Any] = {"inspection": _inspection(own, str(state.get("QueryLanguage", "JSONPath")))}
    if error is not None and _retriable(state, error, attempts):
        answer.update(status="RETRIABLE", error=error, cause=failure.get("cause") or result.cause or "")
        return answer
    if after is not None:
        answer.update(status="CAUGHT_ERROR" if error else "SUCCEEDED", nextState=_details(after)["name"])
        answer["output"] = _details(after).get("input")
    elif result.status == "SUCCEEDED":
        answer.update(status="SUCCEEDED", output=json.dumps(result.output, separators=(",", ":")))
    else:
        answer.update(status="FAILED")
    if error is not None:
        answer.update(error=error, cause=failure.get("cause") or result.cause or "")
    return answer


def test_state(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    r.required_text("definition", high=DEFINITION_MAX_CHARS)
    r.text("roleArn", high=256)
    r.text("input", high=_PAYLOAD_MAX, utf8=True)
    level = r.choice("inspectionLevel", _LEVELS) or "INFO"
    state_name = r.text("stateName", low=1, high=80)
    configuration = r.mapping("stateConfiguration") or {}
    r.check()
    definition = _json_member(request, "definition", None, "InvalidDefinition")
    value = _json_member(request, "input", {}, "InvalidExecutionInput")
    variables = _json_member(request, "variables", None)
    context = _json_member(request, "context", None)
    name, state, language = _state_of(definition, state_name)
    document = _machine(name, state, language, variables)
    try:
        parsed = parse_definition(document)
    except DefinitionError as exc:
        raise ApiError(
            "InvalidDefinition", f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {exc}'"
        ) from None
    clock = VirtualClock()
    integrations = backend.integrations_for(clock)
    mocked = _mock(request, name)
    if mocked is not None:
        integrations = MockedIntegrations(integrations, mocked, task_resources(document), backend.tokens)
    execution = Execution(
        parsed,
        value,
        integrations=integrations,
        clock=clock,
        tokens=backend.tokens,
        context=context if isinstance(context, Mapping) else None,
    )
    found = _answer(execution.run(), name, state, int(configuration.get("retrierRetryCount") or 0))
    inspection = found.pop("inspection")
    if level != "INFO":
        found["inspectionData"] = inspection
    return found


ACTIONS: dict[str, Action] = {"TestState": test_state}
