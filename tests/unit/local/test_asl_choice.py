"""Choice rules: every operator family, the *Path variants, type tests and combinators."""

from __future__ import annotations

from typing import Any

import pytest

from sfn_workers.local.asl.choice import OPERATORS, compile_rule, parse_timestamp
from sfn_workers.local.asl.errors import DefinitionError, StatesError
from sfn_workers.local.asl.paths import JsonPath

DOC = {
    "s": "banana",
    "n": 5,
    "f": 5.0,
    "b": True,
    "t": "2024-01-02T03:04:05Z",
    "t2": "2024-01-02T04:04:05+01:00",
    "null": None,
    "other": "apple",
    "five": 5,
}


def check(rule: dict[str, Any], doc: Any = DOC) -> bool:
    return compile_rule(rule, "test")(lambda p: p.get(doc) if isinstance(p, JsonPath) else None)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "banana"}, True),
        ({"Variable": "$.s", "StringLessThan": "cherry"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "banana"}, True),
        ({"Variable": "$.s", "StringEqualsPath": "$.other"}, False),
        ({"Variable": "$.s", "StringGreaterThanPath": "$.other"}, True),
        ({"Variable": "$.s", "StringMatches": "ba*a"}, True),
        ({"Variable": "$.s", "StringMatches": "ba\\*"}, False),
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.f", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericLessThan": 5}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 5}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.five"}, True),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.b", "BooleanEqualsPath": "$.b"}, True),
        ({"Variable": "$.t", "TimestampEquals": "2024-01-02T03:04:05Z"}, True),
        ({"Variable": "$.t", "TimestampEqualsPath": "$.t2"}, True),  # same instant, other offset
        ({"Variable": "$.t", "TimestampLessThan": "2024-01-02T03:04:06Z"}, True),
        ({"Variable": "$.s", "NumericEquals": 5}, False),  # type mismatch: false, not an error
        ({"Variable": "$.b", "NumericEquals": 1}, False),  # a boolean is not a number
        ({"Variable": "$.n", "StringEquals": "5"}, False),
        ({"Variable": "$.s", "TimestampEquals": "2024-01-02T03:04:05Z"}, False),
        ({"Variable": "$.null", "IsNull": True}, True),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.s", "IsPresent": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.missing", "IsNull": False}, False),  # a missing value is no type at all
        ({"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Variable": "$.b", "BooleanEquals": True}]}, True),
        ({"Or": [{"Variable": "$.n", "NumericGreaterThan": 10}, {"Variable": "$.s", "StringEquals": "x"}]}, False),
        ({"Not": {"Variable": "$.s", "StringEquals": "x"}}, True),
    ],
)
def test_rule(rule: dict[str, Any], expected: bool) -> None:
    assert check(rule) is expected


def test_every_operator_family_is_known() -> None:
    for base in ("String", "Numeric", "Timestamp"):
        for op in ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"):
            assert base + op in OPERATORS and base + op + "Path" in OPERATORS
    assert {"BooleanEquals", "BooleanEqualsPath", "StringMatches", "IsPresent", "IsTimestamp"} <= OPERATORS


def test_missing_variable_is_a_runtime_error() -> None:
    with pytest.raises(StatesError) as err:
        check({"Variable": "$.missing", "StringEquals": "x"})
    assert err.value.error == "States.Runtime"


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.s"},
        {"Variable": "$.s", "StringEquals": 1},
        {"Variable": "$.n", "NumericEquals": "1"},
        {"Variable": "$.s", "StringEquals": "a", "StringLessThan": "b"},
        {"And": []},
        {"Variable": "nope", "IsNull": True},
        {"Variable": "$.s", "IsNull": "yes"},
    ],
)
def test_malformed_rule_is_a_definition_error(rule: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError, match="test"):
        compile_rule(rule, "test")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2016-12-05T21:29:29Z", True),
        ("2016-12-05T21:29:29.123Z", True),
        ("2016-12-05T21:29:29+02:00", True),
        ("2016-12-05 21:29:29Z", False),
        ("2016-12-05T21:29:29", False),
        ("2016-13-05T21:29:29Z", False),
        ("2016-12-05T25:29:29Z", False),
        (20161205, False),
    ],
)
def test_timestamps_follow_rfc3339_as_aws_accepts_it(text: Any, valid: bool) -> None:
    assert (parse_timestamp(text) is not None) is valid
