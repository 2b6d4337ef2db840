"""Definition validation: every message names the state and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfn_workers.local.asl import DefinitionError, parse_definition
from sfn_workers.local.asl.specs import MapSpec


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states, **top}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"States": {"A": {"Type": "Pass", "End": True}}}, "'StartAt' is required"),
        ({"StartAt": "B", "States": {"A": {"Type": "Pass", "End": True}}}, "'StartAt' names unknown state 'B'"),
        (machine({"A": {"Type": "Pass", "Next": "Nope"}}), "state 'A': field 'Next' names unknown state 'Nope'"),
        (machine({"A": {"Type": "Pass"}}), "state 'A': exactly one of 'Next' and 'End: true'"),
        (machine({"A": {"Type": "Bogus", "End": True}}), "state 'A': field 'Type'"),
        (machine({"A": {"Type": "Task", "End": True}}), "state 'A': field 'Resource' is required"),
        (
            machine(
                {
                    "CheckInventory": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Nope"}],
                    }
                }
            ),
            "state 'CheckInventory': field 'Choices[0].Next' names unknown state 'Nope'",
        ),
        (machine({"A": {"Type": "Choice", "Choices": []}}), "state 'A': field 'Choices'"),
        (
            machine({"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": []}]}}),
            "state 'A': field 'Retry[0].ErrorEquals'",
        ),
        (
            machine(
                {
                    "A": {
                        "Type": "Task",
                        "Resource": "r",
                        "End": True,
                        "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}],
                    }
                }
            ),
            "state 'A': field 'Retry[0].BackoffRate'",
        ),
        (
            machine(
                {
                    "A": {
                        "Type": "Task",
                        "Resource": "r",
                        "End": True,
                        "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "X"}],
                    }
                }
            ),
            "state 'A': field 'Retry[0].JitterStrategy'",
        ),
        (
            machine(
                {"A": {"Type": "Task", "Resource": "r", "End": True, "Catch": [{"ErrorEquals": ["X"], "Next": "Z"}]}}
            ),
            "state 'A': field 'Catch[0].Next' names unknown state 'Z'",
        ),
        (
            machine({"A": {"Type": "Task", "Resource": "r", "End": True, "TimeoutSeconds": 5, "HeartbeatSeconds": 5}}),
            "state 'A': field 'HeartbeatSeconds'",
        ),
        (machine({"A": {"Type": "Wait", "End": True}}), "state 'A': exactly one of Seconds"),
        (machine({"A": {"Type": "Wait", "Seconds": -1, "End": True}}), "state 'A': field 'Seconds'"),
        (machine({"A": {"Type": "Pass", "InputPath": "nope", "End": True}}), "state 'A': field 'InputPath'"),
        (machine({"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}), "state 'A': field 'ResultPath'"),
        (
            machine({"A": {"Type": "Pass", "Parameters": {"x.$": "States.Nope("}, "End": True}}),
            "state 'A': field 'Parameters.x.$'",
        ),
        (
            machine({"A": {"Type": "Pass", "Output": {}, "End": True}}),
            "state 'A': field 'Output' is not allowed in a JSONPath state",
        ),
        (
            machine({"A": {"Type": "Pass", "InputPath": "$", "End": True}}, QueryLanguage="JSONata"),
            "state 'A': field 'InputPath' is not allowed in a JSONata state",
        ),
        (
            machine({"A": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "X", "States": {}}]}}),
            "state 'A': field 'Branches[0]'",
        ),
        (
            machine(
                {
                    "M": {
                        "Type": "Map",
                        "End": True,
                        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass"}}},
                    }
                }
            ),
            "state 'I': exactly one of 'Next'",
        ),
        (machine({"A": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}), "state 'A': 'Error' and 'ErrorPath'"),
        (
            machine({"A": {"Type": "Succeed", "Next": "A"}}),
            "state 'A': field 'Next' is not supported by a Succeed state",
        ),
        (machine({"A": {"Type": "Pass", "Nxt": "B", "End": True}}), "state 'A': field 'Nxt' is not supported"),
        (
            machine({"A": {"Type": "Pass", "End": True}, "Orphan": {"Type": "Succeed"}}),
            "state 'Orphan' is not reachable from StartAt 'A'",
        ),
        (machine({"A": {"Type": "Pass", "Assign": {"1x": 1}, "End": True}}), "state 'A': field 'Assign.1x'"),
        (
            machine({"A": {"Type": "Pass", "Assign": {"states": 1}, "End": True}}, QueryLanguage="JSONata"),
            "state 'A': field 'Assign.states'",
        ),
        (
            machine(
                {"A": {"Type": "Pass", "Output": {"x": "{% $states.input. %}"}, "End": True}}, QueryLanguage="JSONata"
            ),
            "state 'A': field 'Output.x' holds an invalid JSONata expression",
        ),
        (
            machine(
                {"A": {"Type": "Choice", "Choices": [{"Condition": "{% ( %}", "Next": "A"}], "Default": "A"}},
                QueryLanguage="JSONata",
            ),
            "state 'A': field 'Choices[0].Condition' holds an invalid JSONata expression",
        ),
    ],
)
def test_invalid_definitions_name_state_and_field(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as err:
        parse_definition(definition)
    assert message in str(err.value)


def test_definition_is_parsed_from_json_text() -> None:
    text = json.dumps(machine({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}))
    definition = parse_definition(text)
    assert definition.start_at == "A"
    assert set(definition.states) == {"A", "B"}


def test_invalid_json_text_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="not valid JSON"):
        parse_definition("{oops")


def test_nested_machines_inherit_the_query_language() -> None:
    d = parse_definition(
        machine(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                }
            },
            QueryLanguage="JSONata",
        )
    )
    spec = d.states["M"]
    assert isinstance(spec, MapSpec) and spec.processor.states["I"].jsonata
