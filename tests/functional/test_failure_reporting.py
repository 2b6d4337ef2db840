"""A failure is always reported: odd exceptions, odd causes, odd names; tokens never in a repr."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfn_workers import TaskContext, TaskFailure, task
from sfn_workers.local.sfn_endpoint import MemoryTokens
from sfn_workers.testing import FakeLambdaContext, task_context
from tests.functional.test_callbacks_support import handler_of


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class StrNotString(Exception):
    def __str__(self) -> Any:
        return 42


class Interrupted(BaseException):
    """Neither an Exception nor one of the usual BaseExceptions."""


def raising(exc: BaseException) -> Any:
    def work(payload: dict[str, Any]) -> None:
        raise exc

    return work


ODD_FAILURES: list[tuple[BaseException, str]] = [
    (StrRaises(), "StrRaises"),
    (StrNotString(), "StrNotString"),
    (TaskFailure("CardDeclined", b"\xff bytes, not text"), "CardDeclined"),  # type: ignore[arg-type]
    (TaskFailure("CardDeclined", {"not": {"json", "a set"}}), "CardDeclined"),  # type: ignore[arg-type]
    (TaskFailure("Bad\x00Name"), "BadName"),
    (TaskFailure("Lone\udc80Surrogate", "cause \ud800 too"), "Lone?Surrogate"),
]


@pytest.mark.parametrize(("exc", "error"), ODD_FAILURES)
def test_odd_failures_are_reported_in_callback_mode(exc: BaseException, error: str, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    assert handler_of(raising(exc))({"taskToken": token}, FakeLambdaContext()) is None
    outcome = tokens.outcome(token)
    assert outcome.error == error
    assert isinstance(json.loads(outcome.cause or ""), dict)


@pytest.mark.parametrize(("exc", "error"), ODD_FAILURES)
def test_odd_failures_leave_direct_mode_under_a_clean_name(exc: BaseException, error: str) -> None:
    handler = task(offload=False)(raising(exc))
    with pytest.raises(Exception) as raised:
        handler({}, FakeLambdaContext())
    assert type(raised.value).__name__ == error
    # what the Lambda runtime does with it: JSON for the response, UTF-8 on the wire
    json.dumps({"errorType": type(raised.value).__name__, "errorMessage": str(raised.value)}).encode("utf-8")


def test_no_repr_shows_a_token() -> None:
    token = "AQB8AAAAKgAAAAMAAAAAAAAAAc" + "x" * 300

    @task(offload=False)
    def work(payload: dict[str, Any], ctx: TaskContext) -> str:
        return repr(ctx)

    ctx = task_context(token=token, execution="e-1", state="Charge")
    assert token not in repr(ctx) and token[:40] not in repr(ctx)
    assert "e-1" in repr(ctx)
    assert token[:40] not in repr(work.task) and token[:40] not in repr(work)
    from sfn_workers.sources import split_payload
    from sfn_workers.sqs import sqs_records

    assert token[:40] not in repr(split_payload({"taskToken": token, "a": 1}, "taskToken", None))
    event = {"Records": [{"messageId": "m", "body": json.dumps({"taskToken": token})}]}
    assert token[:40] not in repr(sqs_records(event, "taskToken"))


def _exception_class(base: type[BaseException], str_kind: str) -> type[BaseException]:
    def broken(self: BaseException) -> Any:
        if str_kind == "raises":
            raise ValueError("no str for you")
        if str_kind == "not-a-string":
            return b"bytes"
        if str_kind == "huge":
            return "\u00e9" * 40_000
        return "fine"

    return type(f"Odd{base.__name__}", (base,), {"__str__": broken})


texts = st.text(alphabet=st.characters(codec=None, categories=None), max_size=300)
causes = st.one_of(
    st.none(), texts, st.binary(max_size=100), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
)
exceptions = st.one_of(
    st.builds(
        lambda base, kind: _exception_class(base, kind)(),
        st.sampled_from([Exception, ValueError, KeyError, Interrupted, SystemExit, KeyboardInterrupt]),
        st.sampled_from(["raises", "not-a-string", "huge", "fine"]),
    ),
    st.builds(lambda name, cause: TaskFailure(name, cause), st.text(min_size=1, max_size=400), causes),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exc=exceptions)
def test_every_exception_gets_exactly_one_outcome_per_token(exc: BaseException, tokens: MemoryTokens) -> None:
    token = tokens.issue()
    handler = handler_of(raising(exc))
    try:
        handler({"taskToken": token}, FakeLambdaContext())
    except BaseException as left:  # only what is not an Exception leaves, after being reported
        assert left is exc and not isinstance(exc, Exception)
    outcome = tokens.outcome(token)  # exactly one, or AssertionError
    assert outcome.kind == "failure"
    assert outcome.error and "\x00" not in outcome.error
