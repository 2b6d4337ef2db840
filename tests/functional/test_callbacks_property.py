"""The guarantee as a property: whatever the function does and whatever Step Functions answers,
a token ends with exactly one outcome, or found closed, or the handler raises — and nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sfn_workers import CallbackDeliveryError, TaskContext
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import handler_of, wait_for_no_callback_threads


class Ok(BaseModel):
    ok: bool


def work(payload: dict[str, Any], ctx: TaskContext) -> Ok:
    if payload["heartbeat"]:
        ctx.heartbeat()
    if payload["behaviour"] == "raise":
        raise LookupError("not found")
    if payload["behaviour"] == "bad-output":
        return {"ok": [1]}  # type: ignore[return-value]
    return Ok(ok=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    behaviour=st.sampled_from(["return", "raise", "bad-output"]),
    heartbeat=st.booleans(),
    closed_before=st.booleans(),
    throttles=st.integers(min_value=0, max_value=3),
    drops=st.integers(min_value=0, max_value=1),
    always_500=st.sampled_from([False, False, False, True]),  # each True example runs to the deadline
)
def test_one_outcome_or_closed_or_raise(
    sfn_endpoint: SfnEndpoint,
    behaviour: str,
    heartbeat: bool,
    closed_before: bool,
    throttles: int,
    drops: int,
    always_500: bool,
) -> None:
    tokens = sfn_endpoint.backend
    assert isinstance(tokens, MemoryTokens)
    sfn_endpoint.clear_faults()
    token = tokens.issue()
    if closed_before:
        tokens.close(token)
    refused_before = len(tokens.refused)

    def mine(request: dict[str, Any]) -> bool:
        return request.get("taskToken") == token

    if always_500:
        sfn_endpoint.inject("*", Fault.internal_failure(), times=None, when=mine)
    if throttles:
        sfn_endpoint.inject("*", Fault.throttle(), times=throttles, when=mine)
    if drops:
        sfn_endpoint.inject("*", Fault.drop(), times=drops, when=mine)
    handler = handler_of(work, timeout_margin_ms=100)
    event = {"taskToken": token, "behaviour": behaviour, "heartbeat": heartbeat}

    raised: BaseException | None = None
    try:
        result = handler(event, FakeLambdaContext(1.2))
        assert result is None
    except CallbackDeliveryError as exc:
        raised = exc

    outcomes = tokens.outcomes[token]
    refused = [(action, code) for action, t, code in tokens.refused[refused_before:] if t == token]
    assert len(outcomes) <= 1
    if always_500:
        # nothing reaches Step Functions: the handler must raise so that Lambda retries
        assert raised is not None and outcomes == []
    elif closed_before:
        # the first answer says closed: no retry, no second attempt, nothing raised
        assert raised is None and outcomes == []
        assert len(refused) == 1 and refused[0][1] == "TaskTimedOut"
    else:
        assert raised is None and len(outcomes) == 1
        expected = {"return": "success", "raise": "failure", "bad-output": "failure"}[behaviour]
        assert outcomes[0].kind == expected
        assert refused == []
    assert wait_for_no_callback_threads() == []
