"""Path forms AWS's Jayway-based JSONPath accepts beyond the basic ``$.a.b[0]``: ``$.[0]``, ``$.['k']``, ``$..[0]``."""

from __future__ import annotations

from typing import Any

import pytest

from sfn_workers.local.asl import parse_definition
from sfn_workers.local.asl.paths import compile_path

from .asl_stubs import ARN, Functions, execute

DOC = {"a": [1, 2, 3], "k": {"b": [7, 8]}, "key": "v"}


@pytest.mark.parametrize(
    ("path", "doc", "expected"),
    [
        ("$.[0]", ["first", "second"], "first"),
        ("$.[-1]", ["first", "second"], "second"),
        ("$.['key']", DOC, "v"),
        ("$['k']['b']", DOC, [7, 8]),
        ("$.k.['b'].[1]", DOC, 8),
        ("$.a[-1:]", DOC, [3]),
        ("$.a.[0:2]", DOC, [1, 2]),
        ("$..[0]", DOC, [1, 7]),
        ("$..['b']", DOC, [[7, 8]]),
    ],
)
def test_jayway_path_forms_select_what_aws_selects(path: str, doc: Any, expected: Any) -> None:
    assert compile_path(path).get(doc) == expected


def _idempotent_workflow() -> dict[str, Any]:
    """Look the request up and do the work side by side, then decide from the lookup (branch 0)."""
    return {
        "StartAt": "LookupAndPrepare",
        "States": {
            "LookupAndPrepare": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Lookup",
                        "States": {"Lookup": {"Type": "Task", "Resource": ARN + "lookup", "End": True}},
                    },
                    {"StartAt": "Prepare", "States": {"Prepare": {"Type": "Pass", "End": True}}},
                ],
                "Next": "AlreadyDone?",
            },
            "AlreadyDone?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.[0].found", "BooleanEquals": True, "Next": "ReturnStored"}],
                "Default": "DoWork",
            },
            "ReturnStored": {"Type": "Pass", "InputPath": "$.[0].stored", "End": True},
            "DoWork": {
                "Type": "Task",
                "Resource": ARN + "work",
                "Parameters": {"request.$": "$.[1].request"},
                "ResultPath": "$.[1].result",
                "OutputPath": "$.[1]",
                "End": True,
            },
        },
    }


def test_a_workflow_reading_dollar_dot_index_is_accepted_and_runs_both_ways() -> None:
    # GIVEN a definition using "$.[0]" / "$.[1]" (refused before: "is not a valid JSONPath")
    parse_definition(_idempotent_workflow())
    stored: dict[str, Any] = {}

    def lookup(payload: Any) -> Any:
        key = payload["request"]["id"]
        return {"found": key in stored, "stored": stored.get(key)}

    def work(payload: Any) -> Any:
        stored[payload["request"]["id"]] = {"done": payload["request"]["id"]}
        return stored[payload["request"]["id"]]

    fns = Functions(lookup=lookup, work=work)
    # WHEN the same request runs twice
    first = execute(_idempotent_workflow(), {"request": {"id": "r-1"}}, fns)
    second = execute(_idempotent_workflow(), {"request": {"id": "r-1"}}, fns)
    # THEN the first does the work, the second returns the stored result without calling work again
    assert first.status == "SUCCEEDED"
    assert first.output == {"request": {"id": "r-1"}, "result": {"done": "r-1"}}
    assert second.status == "SUCCEEDED"
    assert second.output == {"done": "r-1"}
    assert [c.function.rsplit(":", 1)[-1] for c in fns.calls] == ["lookup", "work", "lookup"]
