"""ValidateStateMachineDefinition: the interpreter's validator, answered in AWS's shape
(``result`` OK/FAIL, ``diagnostics`` with severity, code, message and location)."""

from __future__ import annotations

from typing import Any

from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.machines import DEFINITION_MAX_CHARS
from sfn_workers.local.api.protocol import ApiRequest
from sfn_workers.local.validation import diagnose_definition

__all__ = ["ACTIONS"]

_SEVERITIES = ("ERROR", "WARNING")


def validate_state_machine_definition(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    text = r.required_text("definition", high=DEFINITION_MAX_CHARS)
    r.choice("type", ("STANDARD", "EXPRESS"))
    severity = r.choice("severity", _SEVERITIES) or "ERROR"
    limit = r.number("maxResults", low=0, high=100) or 100
    r.check()
    allowed = _SEVERITIES[: _SEVERITIES.index(severity) + 1]  # ERROR: errors only; WARNING: both
    found = [d for d in diagnose_definition(text) if d.severity in allowed]
    errors = any(d.severity == "ERROR" for d in found)
    return {
        "result": "FAIL" if errors else "OK",
        "diagnostics": [d.as_dict() for d in found[:limit]],
        "truncated": len(found) > limit,
    }


ACTIONS: dict[str, Action] = {"ValidateStateMachineDefinition": validate_state_machine_definition}
