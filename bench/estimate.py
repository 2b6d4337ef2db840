"""The sample's scale and cost estimate (``sfn-workers estimate``) at 10, 100 and 1,000 executions/s.

Run: ``make bench-estimate`` or ``.venv/bin/python bench/estimate.py`` (``--runs N``, ``--write`` to
replace the "## Scale and cost estimate" section of bench/README.md).

Two inputs of the sample: the happy path (small payloads, nothing offloaded) and the large order
(its lines offloaded to S3, so the S3 requests and their per-prefix rate show). Each is measured
once (a warm-up run, then ``--runs`` runs) and priced at the three rates, twice: with the Lambda
durations measured in-process (a lower bound) and with 100 ms per invocation, closer to a real
Lambda that calls AWS.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

from readme_section import write_section  # bench/ is on sys.path when a bench runs

from sfn_workers.local.estimate import Usage, estimate, measure

ROOT = Path(__file__).resolve().parents[1]
RATES = (10, 100, 1000)
INPUTS = {"happy path": "execution-happy.json", "large order (offloaded)": "execution-large.json"}


def _measure(name: str, runs: int) -> Usage:
    order = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' own log lines
        return measure(ROOT / "template.yaml", order, runs=runs)


def _with_duration(usage: Usage, ms: float) -> Usage:
    return Usage(**{**usage.__dict__, "lambda_ms": dict.fromkeys(usage.lambda_ms, ms)})


def section(usages: dict[str, Usage]) -> str:
    lines = [
        "## Scale and cost estimate",
        "",
        "`sfn-workers estimate` on the sample (`python bench/estimate.py --write`): what one execution",
        "uses, measured on the local runner, priced with the public us-east-1 prices and quotas of",
        "`sfn_workers/local/data/aws_facts.json` (see [docs/operations.md](../docs/operations.md)).",
        "",
    ]
    for title, usage in usages.items():
        lines += [
            f"### {title}",
            "",
            f"Per execution: {usage.transitions:g} state transitions, {sum(usage.lambda_invocations.values()):g} "
            f"Lambda invocations, {usage.s3_puts:g} S3 PUT / {usage.s3_gets:g} S3 GET, "
            f"{usage.ddb_writes:g} DynamoDB writes, {usage.count('sns', ['Publish']):g} SNS publish, "
            f"{usage.count('states', ['SendTaskSuccess']):g} SendTaskSuccess.",
            "",
            "| executions/s | Lambda ms | Standard USD / 1M | Express USD / 1M | USD / month (Standard) "
            "| first quota to bind (at executions/s) | S3 req/s on one prefix: unsharded / sharded |",
            "|---:|---|---:|---:|---:|---|---|",
        ]
        for label, priced in (("measured", usage), ("100 each", _with_duration(usage, 100.0))):
            for rate in RATES:
                result = estimate(priced, rate)
                first = result.first_binding
                unsharded, sharded = result.s3_requests_per_prefix.values()
                standard, express = result.per_million("STANDARD"), result.per_million("EXPRESS")
                binds = f"{first.name} ({first.binds_at:,.0f})" if first else "-"
                over = " **over it**" if first and rate >= first.binds_at else ""
                lines.append(
                    f"| {rate:,} | {label} | {standard:,.2f} | {express:,.2f} | {result.per_month():,.0f} "
                    f"| {binds}{over} | {unsharded:,.1f} / {sharded:,.2f} |"
                )
        lines += [""] + [f"Note: {w}." for w in estimate(usage, 1).warnings] + [""]
    firsts = []
    for title, usage in usages.items():
        first = estimate(usage, 1).first_binding
        if first is not None:
            firsts.append(f"{title}: {first.name} at {first.binds_at:,.0f}/s")
    lines += [
        "Reading: Standard's cost is almost all state transitions ($25 per million). The first quota",
        f"to bind ({'; '.join(firsts)}) is a Step Functions one, long before Lambda concurrency; at",
        "1,000 executions/s both need a quota increase. Without the offloader's key shards, the large",
        "order's S3 reads on one prefix would pass S3's 5,500 GET/s per prefix at about 420 executions/s.",
        "Express would cost far less but cannot run the sample: its invoice step waits for a task token.",
        "Free tiers, data transfer, CloudWatch and X-Ray are not included.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    usages = {title: _measure(name, args.runs) for title, name in INPUTS.items()}
    text = section(usages)
    print(text)
    if args.write:
        write_section("Scale and cost estimate", text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
