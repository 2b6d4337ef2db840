"""The cost and quota arithmetic of `sfn-workers estimate`, checked against hand computations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local.estimate import OFFLOAD_SHARDS, Usage, estimate, usage_from_history
from sfn_workers.local.facts import load_facts

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def event(kind: str, seconds: float, **details: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": T0 + timedelta(seconds=seconds), **details}


def usage(**overrides: Any) -> Usage:
    base: dict[str, Any] = {
        "transitions": 10.0,
        "lambda_invocations": {"A": 2.0, "B": 1.0},
        "lambda_ms": {"A": 100.0, "B": 1000.0},
        "lambda_memory_mb": {"A": 1024, "B": 512},
        "requests": {
            "s3:PutObject": 2.0,
            "s3:GetObject": 4.0,
            "states:SendTaskSuccess": 1.0,
            "sqs:ReceiveMessage": 7.0,
        },
        "duration_ms": 1250.0,
    }
    return Usage(**{**base, **overrides})


def test_transitions_are_the_states_entered_plus_the_retries_of_tasks() -> None:
    # GIVEN a history: a Task state retried once (scheduled twice), a Choice, a Succeed, over 2.5 s
    history = [
        event("ExecutionStarted", 0),
        event("TaskStateEntered", 0),
        event("TaskScheduled", 0),
        event("TaskFailed", 1),
        event("TaskScheduled", 2),
        event("TaskSucceeded", 2.2),
        event("ChoiceStateEntered", 2.3),
        event("SucceedStateEntered", 2.4),
        event("ExecutionSucceeded", 2.5),
    ]
    # THEN 3 states entered + 1 retry = 4 transitions, and the execution lasted 2,500 ms
    assert usage_from_history(history) == (4.0, 2500.0)


def test_the_cost_per_million_is_the_hand_computation() -> None:
    facts = load_facts()
    result = estimate(usage(), rate=10, facts=facts, arch="arm64")
    # Standard: 10 transitions x $0.000025 = $0.00025 per execution = $250 per million
    assert result.standard_per_million["stepfunctions transitions"] == pytest.approx(250.0)
    # Lambda: 2 x 0.1 s x 1 GB + 1 x 1 s x 0.5 GB = 0.7 GB-s x $0.0000133334 (arm64) -> $9.33 per million
    assert result.standard_per_million["lambda duration"] == pytest.approx(0.7 * 0.0000133334 * 1e6)
    assert result.standard_per_million["lambda requests"] == pytest.approx(3 * 0.2)
    # S3: 2 PUT x $0.005/1000 + 4 GET x $0.0004/1000 per execution
    assert result.standard_per_million["s3 requests"] == pytest.approx((2 * 0.005 + 4 * 0.0004) / 1000 * 1e6)
    # SQS polls (ReceiveMessage) are not per-execution costs
    assert result.standard_per_million["sqs"] == 0
    # Express: $1 per million requests + 1.3 s (100 ms steps) x 64 MB x $0.00001667 per GB-s
    assert result.express_per_million["stepfunctions requests"] == pytest.approx(1.0)
    assert result.express_per_million["stepfunctions duration"] == pytest.approx(1.3 * 0.0625 * 0.00001667 * 1e6)
    assert "stepfunctions transitions" not in result.express_per_million
    # per month at 10/s: the Standard total x 10 x 30 days
    assert result.per_month() == pytest.approx(result.per_million("STANDARD") * 10 * 30 * 86400 / 1e6)


def test_quotas_are_listed_first_binding_first_with_the_rate_where_each_binds() -> None:
    result = estimate(usage(), rate=10)
    by_name = {q.name: q for q in result.quotas}
    # Standard StartExecution refills 300/s: one call per execution binds at 300/s
    assert by_name["Standard StartExecution"].binds_at == pytest.approx(300)
    # 10 transitions per execution against 5,000/s binds at 500/s
    assert by_name["Standard state transitions"].binds_at == pytest.approx(500)
    # Lambda: 2 x 0.1 s + 1 x 1 s = 1.2 Lambda-seconds per execution; 1,000 concurrency / 1.2
    assert by_name["Lambda concurrency (account)"].binds_at == pytest.approx(1000 / 1.2)
    assert by_name["SendTaskSuccess"].binds_at == pytest.approx(500)
    assert [q.binds_at for q in result.quotas] == sorted(q.binds_at for q in result.quotas)
    assert result.first_binding is not None and result.first_binding.name == "Standard StartExecution"


def test_s3_per_prefix_rate_with_and_without_the_shards() -> None:
    result = estimate(usage(), rate=100)
    without, sharded = result.s3_requests_per_prefix.values()
    assert without == pytest.approx(600) and sharded == pytest.approx(600 / OFFLOAD_SHARDS)


def test_express_is_flagged_for_callbacks_and_long_executions() -> None:
    result = estimate(usage(uses_callbacks=True, duration_ms=400_000), rate=1, workflow_type="EXPRESS")
    assert any("waitForTaskToken" in w for w in result.warnings)
    assert any("5 minutes" in w for w in result.warnings)
    assert "Express StartExecution" in {q.name for q in result.quotas}


def test_a_users_facts_file_replaces_only_the_keys_it_holds(tmp_path: Path) -> None:
    own = tmp_path / "facts.json"
    own.write_text(json.dumps({"quotas": {"lambda_concurrent_executions": {"value": 5000, "source": "our quota"}}}))
    facts = load_facts(own)
    assert facts.quota("lambda_concurrent_executions") == 5000
    assert facts.quotas["lambda_concurrent_executions"].source == "our quota"
    assert facts.price("stepfunctions_standard_per_transition") == pytest.approx(0.000025)
    by_name = {q.name: q for q in estimate(usage(), rate=1, facts=facts).quotas}
    assert by_name["Lambda concurrency (account)"].binds_at == pytest.approx(5000 / 1.2)


def test_every_shipped_fact_names_its_source_and_date() -> None:
    facts = load_facts()
    for fact in [*facts.prices.values(), *facts.quotas.values()]:
        assert fact.source.startswith("https://") and fact.as_of


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prices": {"no_such_price": {"value": 1}}}, "unknown keys"),
        ({"quotas": {"lambda_concurrent_executions": {"value": "many"}}}, "numeric 'value'"),
    ],
)
def test_a_bad_facts_file_is_refused_with_a_clear_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_facts(overrides)


@pytest.mark.parametrize(("rate", "kind"), [(0, "STANDARD"), (float("nan"), "STANDARD"), (1, "MEDIUM")])
def test_bad_arguments_are_refused(rate: float, kind: str) -> None:
    with pytest.raises(ValueError):
        estimate(usage(), rate=rate, workflow_type=kind)
