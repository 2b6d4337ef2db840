"""JSONPath subset: selecting values, reference paths and ResultPath merging without mutation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfn_workers.local.asl.paths import PathError, compile_path, set_reference_path

DOC = {
    "a": {"b": [10, 20, 30, 40]},
    "items": [{"n": 1, "ok": True}, {"n": 2, "ok": False}, {"n": 3, "ok": True}],
    "dash-key": "d",
    "x y": "space",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.a.b[1]", 20),
        ("$.a.b[-1]", 40),
        ("$['a']['b'][0]", 10),
        ("$.dash-key", "d"),
        ("$['x y']", "space"),
        ("$.a.b[1:3]", [20, 30]),
        ("$.a.b[:1]", [10]),
        ("$.a.b[2:]", [30, 40]),
        ("$.items[*].n", [1, 2, 3]),
        ("$.items[?(@.ok == true)].n", [1, 3]),
        ("$.items[?(@.n > 1)].n", [2, 3]),
        ("$..n", [1, 2, 3]),
        ("$.a.b[0,2]", [10, 30]),
    ],
)
def test_path_selects_like_aws(path: str, expected: Any) -> None:
    # GIVEN a document WHEN the path is applied THEN it selects what Step Functions selects
    assert compile_path(path).get(DOC) == expected


@pytest.mark.parametrize("path", ["$.nope", "$.a.b[9]", "$.a.b.c", "$.items[0].n.m"])
def test_definite_path_that_finds_nothing_raises(path: str) -> None:
    with pytest.raises(PathError):
        compile_path(path).get(DOC)


@pytest.mark.parametrize("path", ["a.b", "$.a[", "$.a[x]", "$.a[1:2:3:4]"])
def test_malformed_path_is_rejected_at_compile_time(path: str) -> None:
    with pytest.raises(PathError):
        compile_path(path)


def test_roots_are_told_apart() -> None:
    assert compile_path("$").root == "$"
    assert compile_path("$$.Execution.Id").root == "$$"
    assert compile_path("$myVar.field").root == "$myVar"
    assert compile_path("$myVar.field").steps[0].arg == "field"


def test_result_path_creates_missing_objects_and_keeps_the_input_untouched() -> None:
    # GIVEN an input WHEN a result is merged at a deep reference path
    original = {"keep": [1, 2], "a": {"x": 1}}
    snapshot = copy.deepcopy(original)
    out = set_reference_path(original, compile_path("$.a.b.c"), {"r": 1})
    # THEN the path is created, siblings are shared, and the input is not mutated
    assert out == {"keep": [1, 2], "a": {"x": 1, "b": {"c": {"r": 1}}}}
    assert original == snapshot
    assert out["keep"] is original["keep"]


def test_result_path_through_a_non_object_fails() -> None:
    with pytest.raises(PathError):
        set_reference_path({"a": "text"}, compile_path("$.a.b"), 1)


def test_result_path_root_replaces_everything() -> None:
    assert set_reference_path({"a": 1}, compile_path("$"), [1]) == [1]


_keys = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=10,
)


@given(doc=st.dictionaries(_keys, _json, max_size=4), keys=st.lists(_keys, min_size=1, max_size=3), value=_json)
def test_merged_value_is_found_at_its_path_and_input_is_unchanged(
    doc: dict[str, Any], keys: list[str], value: Any
) -> None:
    path = compile_path("$." + ".".join(keys))
    before = copy.deepcopy(doc)
    try:
        out = set_reference_path(doc, path, value)
    except PathError:
        return  # a non-object on the way: AWS fails the state too
    assert path.get(out) == value
    assert doc == before
