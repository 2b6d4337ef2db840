"""Definition diagnostics (sfn-workers validate, ValidateStateMachineDefinition): code, message, location."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local.validation import Diagnostic, diagnose_definition, diagnose_file

SHOP = Path(__file__).parents[2] / "workflow" / "fixtures" / "shop" / "template.yaml"


@pytest.mark.parametrize(
    ("definition", "code", "location"),
    [
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}},
            "MISSING_TRANSITION_TARGET",
            "/States/A/Next",
        ),
        ({"StartAt": "Z", "States": {"A": {"Type": "Pass", "End": True}}}, "MISSING_TRANSITION_TARGET", "/StartAt"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Task", "End": True}}},
            "SCHEMA_VALIDATION_FAILED",
            "/States/A/Resource",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "SCHEMA_VALIDATION_FAILED", "/States/A"),
        ("{not json", "INVALID_JSON_DESCRIPTION", "/"),
    ],
)
def test_an_invalid_definition_gives_one_error_with_awss_code_and_its_location(
    definition: Any, code: str, location: str
) -> None:
    (found,) = diagnose_definition(definition)

    assert (found.severity, found.code, found.location) == ("ERROR", code, location)
    assert found.message
    assert found.as_dict() == {"severity": "ERROR", "code": code, "message": found.message, "location": location}


def test_a_valid_definition_has_no_diagnostics() -> None:
    assert diagnose_definition({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}) == []


def test_a_template_is_checked_machine_by_machine_and_warns_about_functions_it_lacks() -> None:
    found = diagnose_file(SHOP)

    assert found == [
        Diagnostic(
            "WARNING",
            "UNKNOWN_FUNCTION",
            "Resource 'arn:aws:lambda:us-east-1:123456789012:function:external-renderer' names no function "
            "of the template; the local runner cannot run it",
            "/States/Render/Resource",
            "ReportMachine",
        )
    ]


def test_a_definition_file_and_a_broken_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.asl.json", tmp_path / "bad.asl.json"
    good.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}))
    bad.write_text("{")

    assert diagnose_file(good) == []
    assert [d.code for d in diagnose_file(bad)] == ["INVALID_JSON_DESCRIPTION"]
