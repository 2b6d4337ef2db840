"""The interpreter's definition check as diagnostics, the shape AWS's ValidateStateMachineDefinition
answers with (``severity``, ``code``, ``message``, ``location``), for ``sfn-workers validate`` and
the ``serve`` API.

The parser stops at the first error, so a definition has at most one ERROR; a template adds a
WARNING for each Lambda Resource that names no function of the template (it may be deployed
elsewhere, but the local runner cannot run it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sfn_workers.local.asl import DefinitionError, parse_definition
from sfn_workers.local.sam import TemplateError, is_template, lambda_resources, load_template, read_document

__all__ = ["Diagnostic", "diagnose_definition", "diagnose_file"]

_STATE_FIELD = re.compile(r"state '(?P<state>[^']*)'(?:: field '(?P<field>[^']*)'|: '(?P<other>[A-Za-z]+)')?")
_ROOT_FIELD = re.compile(r"^(?:.*: )?field '(?P<field>[A-Za-z]+)'")


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``severity`` ERROR or WARNING, AWS's ``code``, a ``message``, and the JSON
    pointer of the ``location`` in the definition (``/States/Charge/Next``)."""

    severity: str
    code: str
    message: str
    location: str
    state_machine: str = ""  # which state machine of a template ("" for a lone definition)

    def as_dict(self) -> dict[str, str]:
        """The API's shape (no ``state_machine``)."""
        return {k: v for k, v in asdict(self).items() if k != "state_machine"}


def _code(message: str) -> str:
    if "not valid JSON" in message:
        return "INVALID_JSON_DESCRIPTION"
    if "names unknown state" in message:
        return "MISSING_TRANSITION_TARGET"
    return "SCHEMA_VALIDATION_FAILED"


def _location(message: str) -> str:
    found = _STATE_FIELD.search(message)
    at_field = message.find("field '")
    if found is not None and not (0 <= at_field < found.start()):
        field = found.group("field") or found.group("other")
        return f"/States/{found.group('state')}" + (f"/{field}" if field else "")
    root = _ROOT_FIELD.match(message)
    return f"/{root.group('field')}" if root is not None else "/"


def diagnose_definition(definition: Any, state_machine: str = "") -> list[Diagnostic]:
    """The definition's diagnostics (JSON text or a parsed mapping); empty when it is valid."""
    try:
        parse_definition(definition)
    except DefinitionError as exc:
        message = str(exc)
        return [Diagnostic("ERROR", _code(message), message, _location(message), state_machine)]
    return []


def diagnose_file(path: Path) -> list[Diagnostic]:
    """Every state machine of a SAM template, or one ASL definition file (JSON or YAML)."""
    try:
        document = read_document(path)
    except (ValueError, TemplateError) as exc:
        return [Diagnostic("ERROR", "INVALID_JSON_DESCRIPTION", f"{path}: {exc}", "/")]
    if not is_template(document):
        if not isinstance(document, Mapping):
            return [Diagnostic("ERROR", "SCHEMA_VALIDATION_FAILED", "the definition must be a JSON object", "/")]
        return diagnose_definition(json.loads(json.dumps(document)))
    try:
        template = load_template(path)
    except TemplateError as exc:
        return [Diagnostic("ERROR", "TEMPLATE_ERROR", str(exc), "/")]
    found: list[Diagnostic] = []
    for machine in template.state_machines.values():
        errors = diagnose_definition(machine.definition, machine.logical_id)
        found += errors
        if errors:
            continue
        for state, reference in lambda_resources(machine.definition):
            if template.function_for(reference) is None:
                found.append(
                    Diagnostic(
                        "WARNING",
                        "UNKNOWN_FUNCTION",
                        f"Resource {reference!r} names no function of the template; the local runner cannot run it",
                        f"/States/{state}/Resource",
                        machine.logical_id,
                    )
                )
    return found
