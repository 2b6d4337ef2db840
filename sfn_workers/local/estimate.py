"""What a workflow will cost on AWS, and which quota its load hits first, from a local run.

``sfn-workers estimate --input FILE --rate N`` (or :func:`measure` then :func:`estimate`) runs the
workflow locally, counts what one execution uses, and scales it to the rate:

* state transitions (what Standard bills): each ``*StateEntered`` event of the history, plus one per
  retry of a task (a task scheduled again within one state entry);
* Lambda invocations per function, their duration (measured in-process: a lower bound, since real
  AWS calls take longer; ``lambda_ms`` overrides it) and GB-seconds from each function's MemorySize;
* the AWS requests the handlers and the integrations make, counted at boto3 (S3 PUT/GET from
  offloading, SendTask* and heartbeats, DynamoDB, SNS, SQS, EventBridge). SQS ReceiveMessage polls
  are left out: an event source mapping polls whether or not executions run;
* the execution's duration (its virtual time plus the functions' time), for Express's GB-seconds.

From these and the public prices and quotas in ``data/aws_facts.json`` (see :mod:`.facts`) it
gives the cost per million executions on Standard and on Express, the cost per month at the rate,
and every quota with the rate at which it binds, first one first. Offloaded objects spread over
256 key prefixes (the offloader's two-hex-digit shard), so S3's per-prefix request rate is shown with
and without that spread. The figures are an estimate: the free tiers, data transfer, CloudWatch and
X-Ray are not in it, and a real Lambda runs longer than an in-process call.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.local.facts import Facts, load_facts

__all__ = ["Estimate", "QuotaLimit", "Usage", "estimate", "measure", "render", "usage_from_history"]

#: The offloader spreads keys over this many prefixes (two hex digits after the configured prefix).
OFFLOAD_SHARDS = 256
SECONDS_PER_MONTH = 30 * 24 * 3600
_S3_PUTS = {"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload"}
_S3_GETS = {"GetObject", "HeadObject", "SelectObjectContent"}
_DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_DDB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
_SQS_POLLS = {"ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "GetQueueUrl"}
_SEND_TASK = ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")
_RETRIED_TASK_EVENTS = ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled")


@dataclass(frozen=True)
class Usage:
    """What one execution uses, averaged over the measured runs."""

    transitions: float
    lambda_invocations: Mapping[str, float]
    lambda_ms: Mapping[str, float]
    lambda_memory_mb: Mapping[str, int]
    requests: Mapping[str, float]
    duration_ms: float
    runs: int = 1
    uses_callbacks: bool = False

    def count(self, service: str, operations: Iterable[str]) -> float:
        return sum(self.requests.get(f"{service}:{op}", 0.0) for op in operations)

    @property
    def s3_puts(self) -> float:
        return self.count("s3", _S3_PUTS)

    @property
    def s3_gets(self) -> float:
        return self.count("s3", _S3_GETS)

    @property
    def ddb_writes(self) -> float:
        return self.count("dynamodb", _DDB_WRITES)

    @property
    def ddb_reads(self) -> float:
        return self.count("dynamodb", _DDB_READS)

    @property
    def sqs_requests(self) -> float:
        return sum(v for k, v in self.requests.items() if k.startswith("sqs:") and k[4:] not in _SQS_POLLS)

    def gb_seconds(self) -> float:
        return sum(
            n * math.ceil(self.lambda_ms.get(fn, 1.0)) / 1000 * self.lambda_memory_mb.get(fn, 128) / 1024
            for fn, n in self.lambda_invocations.items()
        )

    def lambda_busy_seconds(self) -> float:
        """Lambda-seconds one execution keeps busy (concurrency = rate x this, by Little's law)."""
        return sum(n * self.lambda_ms.get(fn, 1.0) / 1000 for fn, n in self.lambda_invocations.items())


@dataclass(frozen=True)
class QuotaLimit:
    """One quota and the execution rate at which the workflow's load reaches it."""

    name: str
    binds_at: float  # executions per second
    usage_at_rate: float
    limit: float
    unit: str
    source: str


@dataclass(frozen=True)
class Estimate:
    """Costs (USD) and quotas for ``usage`` at ``rate`` executions per second."""

    usage: Usage
    rate: float
    workflow_type: str
    standard_per_million: Mapping[str, float]
    express_per_million: Mapping[str, float]
    quotas: Sequence[QuotaLimit]
    s3_requests_per_prefix: Mapping[str, float]
    warnings: Sequence[str] = field(default_factory=tuple)

    @property
    def first_binding(self) -> QuotaLimit | None:
        return self.quotas[0] if self.quotas else None

    def per_million(self, workflow_type: str | None = None) -> float:
        costs = (
            self.express_per_million
            if (workflow_type or self.workflow_type) == "EXPRESS"
            else self.standard_per_million
        )
        return sum(costs.values())

    def per_month(self, workflow_type: str | None = None) -> float:
        return self.per_million(workflow_type) * self.rate * SECONDS_PER_MONTH / 1e6


# -- counting a run ------------------------------------------------------------------------------


def usage_from_history(history: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(state transitions, execution duration in ms on its clock) of one execution's history."""
    types = Counter(str(e.get("type", "")) for e in history)
    entered = sum(n for t, n in types.items() if t.endswith("StateEntered"))
    scheduled = sum(types[t] for t in _RETRIED_TASK_EVENTS)
    retries = max(0, scheduled - types["TaskStateEntered"])
    stamps = [e["timestamp"] for e in history if e.get("timestamp") is not None]
    duration = (max(stamps) - min(stamps)).total_seconds() * 1000 if len(stamps) > 1 else 0.0
    return float(entered + retries), duration


def _waits_for_tokens(history: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        str(e.get("taskScheduledEventDetails", {}).get("resource", "")).endswith(".waitForTaskToken") for e in history
    )


class _RequestCounter:
    """Counts boto3 requests (``service:Operation``) made while it is installed, from any thread.

    It wraps botocore's one entry point for API calls, so clients created before it (cached by
    handlers across warm invocations, as they should be) are counted too.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[_RequestCounter]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        counter = self

        def counted(client: Any, operation_name: str, api_params: Any) -> Any:
            if counter.active:
                with counter._lock:
                    counter.counts[f"{client.meta.service_model.endpoint_prefix}:{operation_name}"] += 1
            return original(client, operation_name, api_params)

        setattr(BaseClient, "_make_api_call", counted)  # noqa: B010 - botocore's stubs do not declare it
        try:
            yield self
        finally:
            setattr(BaseClient, "_make_api_call", original)  # noqa: B010


def _timed(function: Any, spent: dict[str, list[float]], name: str) -> None:
    original = function.invoke

    def invoke(payload: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(payload, **kwargs)
        finally:
            spent.setdefault(name, []).append((time.perf_counter() - began) * 1000)

    function.invoke = invoke


def measure(
    source: str | Path,
    input: Any,
    *,
    runs: int = 3,
    state_machine: str | None = None,
    lambda_ms: float | Mapping[str, float] | None = None,
) -> Usage:
    """Run the workflow ``runs`` times locally (after one warm-up run) and average what one uses."""
    from sfn_workers.local import LocalRunner

    counter = _RequestCounter()
    spent: dict[str, list[float]] = {}
    transitions: list[float] = []
    durations: list[float] = []
    callbacks = False
    with counter.installed(), LocalRunner(source, state_machine=state_machine) as runner:
        template = runner.template
        memory = {fid: f.memory_size for fid, f in template.functions.items()} if template else {}
        runner.run(input)  # warm-up: imports and first clients are a cold start, not the steady state
        for name, function in runner.functions.items():
            _timed(function, spent, name)
        counter.active = True
        for _ in range(max(1, runs)):
            result = runner.run(input)
            if result.status != "SUCCEEDED":
                raise RuntimeError(f"the execution {result.status}: {result.error}: {result.cause}")
            steps, duration = usage_from_history(result.history)
            transitions.append(steps)
            durations.append(duration)
            callbacks = callbacks or _waits_for_tokens(result.history)
        counter.active = False
    n = max(1, runs)
    invocations = {fn: len(times) / n for fn, times in spent.items()}
    measured = {fn: sum(times) / len(times) for fn, times in spent.items() if times}
    if isinstance(lambda_ms, Mapping):
        measured.update(lambda_ms)
    elif lambda_ms is not None:
        measured = dict.fromkeys(measured, float(lambda_ms))
    busy = sum(invocations[fn] * measured.get(fn, 0.0) for fn in invocations)
    return Usage(
        transitions=sum(transitions) / n,
        lambda_invocations=invocations,
        lambda_ms=measured,
        lambda_memory_mb={fn: memory.get(fn, 128) for fn in invocations},
        requests={k: v / n for k, v in counter.counts.items()},
        duration_ms=sum(durations) / n + busy,
        runs=n,
        uses_callbacks=callbacks,
    )


# -- pricing and quotas --------------------------------------------------------------------------


def _service_costs(usage: Usage, facts: Facts, arch: str) -> dict[str, float]:
    """Per execution, in USD: what both workflow types pay besides Step Functions itself."""
    return {
        "lambda requests": sum(usage.lambda_invocations.values()) * facts.price("lambda_per_request"),
        "lambda duration": usage.gb_seconds() * facts.price(f"lambda_per_gb_second_{arch}"),
        "s3 requests": usage.s3_puts * facts.price("s3_per_put") + usage.s3_gets * facts.price("s3_per_get"),
        "dynamodb": usage.ddb_writes * facts.price("dynamodb_per_write_request")
        + usage.ddb_reads * facts.price("dynamodb_per_read_request"),
        "sns": usage.count("sns", ["Publish", "PublishBatch"]) * facts.price("sns_per_publish"),
        "sqs": usage.sqs_requests * facts.price("sqs_per_request"),
        "eventbridge": usage.count("events", ["PutEvents"]) * facts.price("eventbridge_per_event"),
    }


def _express_cost(usage: Usage, facts: Facts) -> dict[str, float]:
    billed_s = math.ceil(max(usage.duration_ms, 1.0) / 100) * 0.1  # 100 ms steps
    return {
        "stepfunctions requests": facts.price("stepfunctions_express_per_request"),
        "stepfunctions duration": billed_s * 64 / 1024 * facts.price("stepfunctions_express_per_gb_second"),
    }


def _quota(facts: Facts, key: str, name: str, per_execution: float, rate: float, unit: str) -> QuotaLimit | None:
    if per_execution <= 0:
        return None
    fact = facts.quotas[key]
    return QuotaLimit(name, fact.value / per_execution, per_execution * rate, fact.value, unit, fact.source)


def _quotas(usage: Usage, facts: Facts, rate: float, workflow_type: str) -> list[QuotaLimit]:
    s3_puts_one_prefix = usage.s3_puts / OFFLOAD_SHARDS
    s3_gets_one_prefix = usage.s3_gets / OFFLOAD_SHARDS
    candidates = [
        _quota(
            facts,
            "lambda_concurrent_executions",
            "Lambda concurrency (account)",
            usage.lambda_busy_seconds(),
            rate,
            "concurrent",
        ),
        _quota(
            facts,
            "s3_puts_per_second_per_prefix",
            "S3 PUT per prefix (sharded keys)",
            s3_puts_one_prefix,
            rate,
            "req/s",
        ),
        _quota(
            facts,
            "s3_gets_per_second_per_prefix",
            "S3 GET per prefix (sharded keys)",
            s3_gets_one_prefix,
            rate,
            "req/s",
        ),
        _quota(facts, "dynamodb_table_writes_per_second", "DynamoDB writes per table", usage.ddb_writes, rate, "WRU/s"),
        _quota(facts, "dynamodb_table_reads_per_second", "DynamoDB reads per table", usage.ddb_reads, rate, "RRU/s"),
        _quota(facts, "sns_publish_per_second", "SNS Publish", usage.count("sns", ["Publish"]), rate, "req/s"),
    ]
    for op in _SEND_TASK:
        candidates.append(_quota(facts, "send_task_per_second", op, usage.count("states", [op]), rate, "req/s"))
    if workflow_type == "EXPRESS":
        candidates.append(
            _quota(facts, "express_start_execution_per_second", "Express StartExecution", 1.0, rate, "req/s")
        )
    else:
        candidates.append(
            _quota(facts, "standard_start_execution_per_second", "Standard StartExecution", 1.0, rate, "req/s")
        )
        candidates.append(
            _quota(
                facts,
                "standard_state_transitions_per_second",
                "Standard state transitions",
                usage.transitions,
                rate,
                "transitions/s",
            )
        )
    return sorted((q for q in candidates if q is not None), key=lambda q: q.binds_at)


def estimate(
    usage: Usage,
    rate: float,
    *,
    workflow_type: str = "STANDARD",
    facts: Facts | None = None,
    arch: str = "arm64",
) -> Estimate:
    """Costs per million executions (Standard and Express) and the quotas, first binding first."""
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of executions per second, not {rate!r}")
    if workflow_type not in ("STANDARD", "EXPRESS"):
        raise ValueError(f"workflow type must be STANDARD or EXPRESS, not {workflow_type!r}")
    if arch not in ("arm64", "x86_64"):
        raise ValueError(f"arch must be arm64 or x86_64, not {arch!r}")
    facts = facts or load_facts()
    shared = _service_costs(usage, facts, arch)
    standard = {"stepfunctions transitions": usage.transitions * facts.price("stepfunctions_standard_per_transition")}
    express = _express_cost(usage, facts)
    warnings: list[str] = []
    if usage.uses_callbacks:
        warnings.append("Express workflows do not support .waitForTaskToken: this workflow can only run as Standard")
    if usage.duration_ms > 300_000:
        warnings.append("an execution runs longer than Express's 5 minutes: it can only run as Standard")
    return Estimate(
        usage=usage,
        rate=rate,
        workflow_type=workflow_type,
        standard_per_million={k: v * 1e6 for k, v in {**standard, **shared}.items()},
        express_per_million={k: v * 1e6 for k, v in {**express, **shared}.items()},
        quotas=_quotas(usage, facts, rate, workflow_type),
        s3_requests_per_prefix={
            "without sharding": (usage.s3_puts + usage.s3_gets) * rate,
            f"sharded over {OFFLOAD_SHARDS} prefixes": (usage.s3_puts + usage.s3_gets) * rate / OFFLOAD_SHARDS,
        },
        warnings=tuple(warnings),
    )


def render(result: Estimate) -> str:
    """The estimate as the command prints it."""
    u = result.usage
    lines = [
        f"Per execution (mean of {u.runs} local runs): {u.transitions:g} state transitions, "
        f"{sum(u.lambda_invocations.values()):g} Lambda invocations ({u.gb_seconds():.4f} GB-s), "
        f"{u.s3_puts:g} S3 PUT, {u.s3_gets:g} S3 GET, {u.ddb_writes + u.ddb_reads:g} DynamoDB, "
        f"{u.count('sns', ['Publish']):g} SNS, {u.sqs_requests:g} SQS, "
        f"{sum(u.count('states', [op]) for op in _SEND_TASK):g} SendTask* requests",
        "",
        "| cost per 1M executions (USD) | Standard | Express |",
        "|---|---:|---:|",
    ]
    for key in sorted(set(result.standard_per_million) | set(result.express_per_million)):
        std, exp = result.standard_per_million.get(key), result.express_per_million.get(key)
        lines.append(f"| {key} | {'' if std is None else f'{std:,.2f}'} | {'' if exp is None else f'{exp:,.2f}'} |")
    lines.append(
        f"| **total** | **{result.per_million('STANDARD'):,.2f}** | **{result.per_million('EXPRESS'):,.2f}** |"
    )
    lines += [
        "",
        f"At {result.rate:g} executions/s ({result.workflow_type}): {result.per_month():,.0f} USD per 30-day month.",
        "",
        "| quota | binds at (executions/s) | use at this rate | limit |",
        "|---|---:|---:|---:|",
    ]
    for q in result.quotas:
        mark = " **over**" if q.usage_at_rate >= q.limit else ""
        lines.append(f"| {q.name} | {q.binds_at:,.1f} | {q.usage_at_rate:,.1f} {q.unit}{mark} | {q.limit:,.0f} |")
    first = result.first_binding
    if first is not None:
        lines += ["", f"First to bind: {first.name}, at {first.binds_at:,.1f} executions/s ({first.source})."]
    lines += [f"S3 requests per second on one prefix, {k}: {v:,.1f}" for k, v in result.s3_requests_per_prefix.items()]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
