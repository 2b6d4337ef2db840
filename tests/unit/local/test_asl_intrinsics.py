"""Every States.* intrinsic function, with AWS's argument rules."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfn_workers.local.asl.errors import StatesError
from sfn_workers.local.asl.intrinsics import compile_intrinsic
from sfn_workers.local.asl.paths import JsonPath

DOC = {"arr": [1, 2, 2, 3], "s": "a,b;;c", "obj": {"k": 1}, "n": 2.5, "txt": "hello"}


def run(expr: str, doc: Any = DOC, variables: dict[str, Any] | None = None) -> Any:
    def resolve(p: JsonPath) -> Any:
        if p.root == "$":
            return p.get(doc)
        assert variables is not None
        return p.get(variables[p.root[1:]])

    return compile_intrinsic(expr).evaluate(resolve)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("States.Format('x={}, y={}', $.arr[0], $.txt)", "x=1, y=hello"),
        ("States.Format('{}', $.obj)", "{k=1}"),
        ("States.Format('a \\{\\} b {}', 1)", "a {} b 1"),
        ("States.StringToJson('{\"a\": [1]}')", {"a": [1]}),
        ("States.JsonToString($.obj)", '{"k":1}'),
        ("States.Array(1, 'two', $.obj, null, true)", [1, "two", {"k": 1}, None, True]),
        ("States.ArrayPartition($.arr, 3)", [[1, 2, 2], [3]]),
        ("States.ArrayContains($.arr, 3)", True),
        ("States.ArrayContains($.arr, 9)", False),
        ("States.ArrayRange(1, 9, 3)", [1, 4, 7]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayGetItem($.arr, 3)", 3),
        ("States.ArrayLength($.arr)", 4),
        ("States.ArrayUnique($.arr)", [1, 2, 3]),
        ("States.Base64Encode('hello')", "aGVsbG8="),
        ("States.Base64Decode('aGVsbG8=')", "hello"),
        ("States.Hash('hello', 'SHA-256')", hashlib.sha256(b"hello").hexdigest()),
        ("States.Hash($.txt, 'MD5')", hashlib.md5(b"hello").hexdigest()),
        ('States.JsonMerge($.obj, States.StringToJson(\'{"k": 2, "j": 3}\'), false)', {"k": 2, "j": 3}),
        ("States.MathAdd(1, -3)", -2),
        ("States.MathAdd($.n, 1)", 4),  # operands are rounded half up, like Java's Math.round
        ("States.StringSplit($.s, ',;')", ["a", "b", "c"]),
        ("States.ArrayLength(States.StringSplit($.s, ','))", 2),
    ],
)
def test_intrinsic_results(expr: str, expected: Any) -> None:
    assert run(expr) == expected


def test_uuid_is_a_version_4_uuid() -> None:
    value = run("States.UUID()")
    assert len(value) == 36 and value[14] == "4"


@given(lo=st.integers(-1000, 1000), width=st.integers(1, 1000), seed=st.integers(0, 10**6))
def test_math_random_is_in_range_and_seeded_results_repeat(lo: int, width: int, seed: int) -> None:
    expr = f"States.MathRandom({lo}, {lo + width}, {seed})"
    value = run(expr)
    assert lo <= value < lo + width
    assert run(expr) == value


def test_variables_and_paths_mix() -> None:
    assert run("States.Format('{} {}', $greeting, $.txt)", variables={"greeting": "hi"}) == "hi hello"


@pytest.mark.parametrize(
    "expr",
    [
        "States.ArrayGetItem($.arr, 10)",
        "States.ArrayLength($.txt)",
        "States.ArrayPartition($.arr, 0)",
        "States.ArrayRange(0, 2000, 1)",
        "States.Hash($.txt, 'SHA-999')",
        "States.StringToJson('{oops')",
        "States.Format('{} {}', 1)",
        "States.JsonMerge($.obj, $.obj, true)",
        "States.MathAdd('1', 2)",
        "States.Base64Decode('***')",
        "States.NoSuchFunction(1)",
        "States.UUID(1)",
    ],
)
def test_bad_arguments_raise_intrinsic_failure(expr: str) -> None:
    with pytest.raises(StatesError) as err:
        run(expr)
    assert err.value.error == "States.IntrinsicFailure"


@pytest.mark.parametrize("expr", ["States.Format('x'", "States.Array(1,,2)", "States.Array(1 2)", "States.Array() x"])
def test_malformed_calls_do_not_parse(expr: str) -> None:
    with pytest.raises(ValueError):
        compile_intrinsic(expr)
