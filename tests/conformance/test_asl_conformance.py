"""AWS-recorded ASL executions (../shared/conformance/asl/cases.jsonl) run on the local interpreter.

Status, output (as JSON values), error and cause (the definition's, and AWS's own wording of
runtime errors, which the interpreter reproduces) are compared. Each case runs with a
VirtualClock (Waits and Retry intervals take no real time) and an Integrations stub that plays
the case's Lambda functions (echo / constant / raise). Cases listed
in known_failures.txt are expected to fail (strict: one that starts passing is reported, so the
list stays true); any other failing case fails the suite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local.asl import (
    Execution,
    LambdaError,
    LambdaInvocation,
    TaskError,
    TokenBroker,
    VirtualClock,
    parse_definition,
)

REPO = Path(__file__).resolve().parents[2]
CASES_FILE = REPO.parent / "shared" / "conformance" / "asl" / "cases.jsonl"
KNOWN_FAILURES_FILE = Path(__file__).with_name("known_failures.txt")


def _load_cases() -> list[dict[str, Any]]:
    if not CASES_FILE.exists():
        return []
    with CASES_FILE.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _load_known_failures() -> dict[str, str]:
    known: dict[str, str] = {}
    if KNOWN_FAILURES_FILE.exists():
        for line in KNOWN_FAILURES_FILE.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            case_id, _, reason = line.partition("  # ")
            known[case_id.strip()] = reason.strip() or "known failure"
    return known


CASES = _load_cases()
KNOWN = _load_known_failures()


class CaseLambdas:
    """The trivial functions a case names in ``lambdas``: echo, constant, raise."""

    def __init__(self, lambdas: Mapping[str, Any]) -> None:
        self._by_name: dict[str, Mapping[str, Any]] = {}
        for name, spec in lambdas.items():
            self._by_name[name] = spec
            self._by_name[spec["arn"]] = spec

    def invoke_lambda(self, call: LambdaInvocation) -> Any:
        spec = self._by_name.get(call.function) or self._by_name.get(call.function.rsplit(":", 1)[-1])
        if spec is None:
            raise TaskError("Lambda.ResourceNotFoundException", f"Function not found: {call.function}")
        behaviour = spec["behaviour"]
        if behaviour == "echo":
            return json.loads(json.dumps(call.payload))
        if behaviour == "constant":
            return spec["value"]
        raise LambdaError(spec["error"], spec.get("message", ""), ['  File "handler.py", line 1, in handler'])

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        raise TaskError("States.Runtime", f"no service integration in the conformance stub: {resource}")


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def same_json(actual: Any, expected: Any, placeholders: dict[str, str] | None = None) -> bool:
    """JSON equality as the cases README defines it (numbers by value, never bool == number)."""
    if isinstance(expected, str) and placeholders is not None and re.fullmatch(r"<uuid:\d+>", expected):
        if not isinstance(actual, str) or not _UUID.match(actual):
            return False
        return placeholders.setdefault(expected, actual) == actual
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same_json(actual[k], expected[k], placeholders) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same_json(a, e, placeholders) for a, e in zip(actual, expected, strict=True))
        )
    return type(actual) is type(expected) and actual == expected


def run_case(case: Mapping[str, Any]) -> list[str]:
    """Run one case; returns the list of differences (empty when it conforms)."""
    definition = parse_definition(case["definition"])
    context = case.get("context") or {}
    name = context.get("Execution", {}).get("Name")
    execution = Execution(
        definition,
        case["input"],
        integrations=CaseLambdas(case.get("lambdas") or {}),
        clock=VirtualClock(),
        tokens=TokenBroker(),
        name=name,
        context=context,
    )
    result = execution.run()
    expected = case["expected"]
    problems = []
    if result.status != expected["status"]:
        problems.append(
            f"status {result.status} != {expected['status']} (error={result.error!r}, cause={result.cause!r})"
        )
    elif expected["status"] == "SUCCEEDED":
        placeholders: dict[str, str] = {} if case.get("placeholders") else None  # type: ignore[assignment]
        if not same_json(result.output, expected["output"], placeholders):
            problems.append(f"output {json.dumps(result.output)[:2000]} != {json.dumps(expected['output'])[:2000]}")
    else:
        if result.error != expected.get("error"):
            problems.append(f"error {result.error!r} != {expected.get('error')!r} (cause={result.cause!r})")
        # Causes set by the definition, and AWS's own runtime-error wording, which we reproduce.
        if case.get("cause_origin") in ("definition", "aws") and result.cause != expected.get("cause"):
            problems.append(f"cause {result.cause!r} != {expected.get('cause')!r}")
    return problems


def _params() -> list[Any]:
    if not CASES:
        return [pytest.param(None, id="no-cases", marks=pytest.mark.skip(reason=f"{CASES_FILE} is absent"))]
    out = []
    for case in CASES:
        marks = []
        if case["id"] in KNOWN:
            marks.append(pytest.mark.xfail(reason=KNOWN[case["id"]], strict=True))
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_conformance_case(case: Mapping[str, Any]) -> None:
    # GIVEN an AWS-recorded execution WHEN the local interpreter runs it THEN it ends the same way
    problems = run_case(case)
    assert not problems, "; ".join(problems)


def test_known_failures_name_existing_cases() -> None:
    if not CASES:
        pytest.skip(f"{CASES_FILE} is absent")
    ids = {c["id"] for c in CASES}
    stale = sorted(set(KNOWN) - ids)
    assert not stale, f"known_failures.txt names cases that do not exist: {stale}"
