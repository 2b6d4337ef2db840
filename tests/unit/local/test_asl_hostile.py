"""Hostile or runaway input cannot hold the interpreter: each case runs under hard time/memory limits.

Cases that could hold the GIL (a backtracking regex) or eat memory run in a child Python that is
killed at its time limit and has an address-space limit (bounded_child); the rest use tracemalloc
peaks and pytest-timeout. No assertion reads a clock.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from sfn_workers._limits import HISTORY_EVENTS_MAX
from sfn_workers.local.asl.choice import glob_match
from sfn_workers.local.asl.errors import StatesError
from sfn_workers.local.asl.intrinsics import compile_intrinsic
from sfn_workers.local.asl.jsonata_bounded import JsonataBudget, evaluate_with_budget, nests_quantifiers
from sfn_workers.local.asl.templates import evaluate_jsonata

from .asl_stubs import execute, execution
from .bounded_child import run_bounded

_CHILD_PRELUDE = """
import json
from sfn_workers.local.asl import parse_definition
from tests.unit.local.asl_stubs import execute
"""


def _child_run(definition: dict[str, Any], doc: Any, *, seconds: float, memory_mb: int = 1024) -> Any:
    code = _CHILD_PRELUDE + (
        f"r = execute(json.loads({json.dumps(json.dumps(definition))}), json.loads({json.dumps(json.dumps(doc))}))\n"
        "print(json.dumps({'status': r.status, 'error': r.error, 'cause': r.cause, 'output': r.output}))\n"
    )
    return run_bounded(code, seconds=seconds, memory_mb=memory_mb)


def _jsonata_pass(expr: str) -> dict[str, Any]:
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% " + expr + " %}", "End": True}},
    }


# -- 1. StringMatches ------------------------------------------------------------------------------
def test_string_matches_with_many_stars_answers_at_once_on_long_input() -> None:
    # GIVEN the pattern that made the regex translation backtrack for minutes, and 2,000 characters
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.s", "StringMatches": "*a*a*a*a*a*a*b", "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {"Type": "Pass", "Result": "matched", "End": True},
            "No": {"Type": "Pass", "Result": "no match", "End": True},
        },
    }
    # WHEN it runs in a child that is killed after 20 s THEN it answers, and correctly both ways
    assert _child_run(definition, {"s": "a" * 2000}, seconds=20)["output"] == "no match"
    assert _child_run(definition, {"s": "a" * 2000 + "b"}, seconds=20)["output"] == "matched"


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("log-2024.txt", "log-*.txt", True),
        ("log-2024.csv", "log-*.txt", False),
        ("a", "a*a", False),
        ("aa", "a*a", True),
        ("x*y", "x\\*y", True),
        ("xzy", "x\\*y", False),
        ("a\\b", "a\\\\b", True),
        ("", "*", True),
        ("aXbXc", "*X*X*", True),
        ("aXb", "*X*X*", False),
        ("abcabd", "*abd", True),
    ],
)
def test_glob_matches_like_aws(value: str, pattern: str, expected: bool) -> None:
    assert glob_match(value, pattern) is expected


# -- 2. JSONata budget ------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_endless_jsonata_recursion_fails_the_state_with_query_evaluation_error() -> None:
    # GIVEN a tail-recursive function that never returns (no stack growth: only a step budget stops it)
    definition = _jsonata_pass("( $f := function($x){ $f($x) }; $f(1) )")
    # WHEN it runs under a 60 s kill THEN the execution fails with AWS's JSONata error and says why
    r = _child_run(definition, {}, seconds=60)
    assert r["status"] == "FAILED"
    assert r["error"] == "States.QueryEvaluationError"
    assert "evaluation steps" in r["cause"]


def test_deep_jsonata_recursion_fails_on_the_depth_budget() -> None:
    r = execute(_jsonata_pass("( $f := function($x){ 1 + $f($x) }; $f(1) )"))
    assert (r.status, r.error) == ("FAILED", "States.QueryEvaluationError")
    assert "nests deeper than" in (r.cause or "")


def test_catastrophic_regex_on_a_long_string_answers_at_once() -> None:
    # GIVEN /^(a+)+$/ against 5,000 a's and a b (exponential for a backtracking engine)
    definition = _jsonata_pass("$exists($match($states.input.s, /^(a+)+$/))")
    # WHEN it runs in a child killed after 20 s THEN it answers: no match
    r = _child_run(definition, {"s": "a" * 5000 + "b"}, seconds=20)
    assert (r["status"], r["output"]) == ("SUCCEEDED", False)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("$pad('x', 1e9)", "string of more than"),
        ("$string([1..10000000])", "array of more than"),
        ("$reduce([1..40], function($a, $b){ $a & $a }, 'xx')", "string of more than"),
        ("$range(0, 1e8, 1)", "more than 1000 items"),
        ("( $a := $pad('', 1000000); $string([$a, $a, $a, $a, $a, $a]) )", "string of more than"),
        ("( $a := $pad('', 1000000); $join([$a, $a, $a, $a, $a, $a], '') )", "string of more than"),
        ("$replace($pad('', 100000, 'a'), 'a', $pad('', 1000, 'b'))", "string of more than"),
        ("$reduce([1..30], function($acc, $v){ [$acc, $acc] }, [1])", "array of more than"),
        (
            "( $a := $pad('', 100000); $b := [$a, $a, $a, $a, $a, $a, $a, $a]; {'x': [$b, $b, $b, $b, $b, $b]} )",
            "result",
        ),
    ],
)
def test_allocating_expressions_fail_before_allocating(expr: str, reason: str) -> None:
    # GIVEN an expression that would build gigabytes WHEN evaluated under tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(StatesError) as caught:
            evaluate_jsonata("{% " + expr + " %}", {}, "Output")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN it fails with States.QueryEvaluationError naming the limit, having used little memory
    assert caught.value.error == "States.QueryEvaluationError"
    assert reason in (caught.value.cause or "")
    assert peak < 64 * 1024 * 1024


def test_a_smaller_step_budget_stops_a_long_expression() -> None:
    # GIVEN a budget of 50 steps and an expression needing far more
    import jsonata

    compiled = jsonata.Jsonata("$sum($map([1..1000], function($v){ $v * 2 }))")
    with pytest.raises(StatesError) as caught:
        evaluate_with_budget(compiled, {}, "expr", JsonataBudget(max_steps=50))
    assert "more than 50 evaluation steps" in (caught.value.cause or "")


def test_regex_that_needs_backtracking_and_nests_quantifiers_is_refused() -> None:
    # RE2 cannot run back-references; with nested quantifiers too, the pattern is refused outright
    assert nests_quantifiers("((a+)\\2)+")
    assert not nests_quantifiers("(a)\\1")
    with pytest.raises(StatesError) as caught:
        evaluate_jsonata("{% $match('aa', /((a+)\\2)+/) %}", {}, "Output")
    assert "nests quantifiers" in (caught.value.cause or "")
    assert evaluate_jsonata("{% $match('aa', /(a)\\1/).match %}", {}, "Output") == "aa"


def test_ordinary_regex_functions_still_work() -> None:
    assert evaluate_jsonata("{% $replace('ab', /(a)/, '$1$1') %}", {}, "Output") == "aab"
    assert evaluate_jsonata("{% $contains('abc', /B/i) %}", {}, "Output") is True
    assert evaluate_jsonata("{% $split('a1b2c', /\\d/) %}", {}, "Output") == ["a", "b", "c"]
    assert evaluate_jsonata("{% $pad('x', -3, '#') %}", {}, "Output") == "##x"


# -- 3. intrinsic limits before allocating ------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("States.ArrayRange(0, 100000000, 1)", "more than 1000 items"),
        ("States.ArrayRange(0, 1000, 1)", "more than 1000 items"),
        ("States.Base64Encode($.big)", "longer than 10000"),
        ("States.Hash($.big, 'SHA-256')", "longer than 10000"),
    ],
)
def test_intrinsic_limits_are_checked_before_allocating(expr: str, message: str) -> None:
    doc = {"big": "x" * 10_001}
    tracemalloc.start()
    try:
        with pytest.raises(StatesError) as caught:
            compile_intrinsic(expr).evaluate(lambda p: p.get(doc))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.error == "States.IntrinsicFailure"
    assert message in (caught.value.cause or "")
    assert peak < 16 * 1024 * 1024


def test_array_range_of_exactly_1000_items_is_allowed() -> None:
    assert len(compile_intrinsic("States.ArrayRange(1, 1000, 1)").evaluate(lambda p: None)) == 1000


# -- 4. history cap ---------------------------------------------------------------------------------
def test_a_pass_loop_fails_at_aws_history_cap_with_bounded_memory() -> None:
    # GIVEN two Pass states sending each other a 1 KB payload forever
    definition = {
        "StartAt": "Ping",
        "States": {"Ping": {"Type": "Pass", "Next": "Pong"}, "Pong": {"Type": "Pass", "Next": "Ping"}},
    }
    code = _CHILD_PRELUDE + (
        f"r = execute(json.loads({json.dumps(json.dumps(definition))}), {{'pad': 'x' * 1024}})\n"
        "last = r.history[-1]\n"
        "print(json.dumps({'status': r.status, 'error': r.error, 'cause': r.cause, 'n': len(r.history),"
        " 'last': [last['type'], last['id'], last['previousEventId']]}))\n"
    )
    # WHEN it runs in a child with 600 MB of address space and 120 s
    r = run_bounded(code, seconds=120, memory_mb=600)
    # THEN it ends FAILED as AWS does: event 25,000 is ExecutionFailed after the 24,999th real event
    assert (r["status"], r["error"]) == ("FAILED", "States.Runtime")
    assert r["cause"] == f"The execution reached the maximum number of history events ({HISTORY_EVENTS_MAX})."
    assert r["n"] == HISTORY_EVENTS_MAX
    assert r["last"] == ["ExecutionFailed", HISTORY_EVENTS_MAX, HISTORY_EVENTS_MAX - 1]


@pytest.mark.timeout(60)
def test_stop_execution_ends_a_running_jsonata_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a budget so large that only a stop can end the endless recursion (the 60 s kill would)
    from sfn_workers.local.asl import jsonata_bounded

    monkeypatch.setattr(
        jsonata_bounded, "DEFAULT_BUDGET", JsonataBudget(max_steps=10**12, max_depth=400, max_seconds=3600.0)
    )
    holder: list[Any] = []

    def stop_on_entry(event: dict[str, Any]) -> None:
        if event["type"] == "PassStateEntered":  # the expression is evaluated right after this event
            holder[0].stop("Stopped", "by the test")

    run = execution(_jsonata_pass("( $f := function($x){ $f($x) }; $f(1) )"), listener=stop_on_entry)
    holder.append(run)
    # WHEN it runs THEN it ends ABORTED, with the stop's error
    r = run.run()
    assert (r.status, r.error, r.cause) == ("ABORTED", "Stopped", "by the test")
    assert r.history[-1]["type"] == "ExecutionAborted"
