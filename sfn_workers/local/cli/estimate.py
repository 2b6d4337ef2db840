"""``sfn-workers estimate``: the cost and the first binding quota of a workflow at a rate, from a local run.

The arithmetic is :mod:`sfn_workers.local.estimate`'s; this module is the command line around it.

::

    sfn-workers estimate [--template template.yaml] [--state-machine NAME] --input FILE|JSON --rate N
                         [--type STANDARD|EXPRESS] [--runs 3] [--lambda-ms MS] [--arch arm64|x86_64]
                         [--facts FILE] [--json]
    sfn-workers estimate --history FILE --rate N ...     # a history saved by `sfn-workers run --history`

With ``--input`` it runs the workflow locally (one warm-up run, then ``--runs`` measured ones) and
counts everything; with ``--history`` it reads a saved history, which holds the transitions and the
Lambda invocations but not the AWS requests the functions made. Exit status 0, 1 when the
measured execution fails, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sfn_workers.local.cli.common import EXIT_FAILED, EXIT_OK, Command, UsageError, add_template_option, template_path
from sfn_workers.local.estimate import Estimate, Usage, estimate, measure, render, usage_from_history
from sfn_workers.local.facts import load_facts

__all__ = ["COMMAND", "as_json"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_template_option(parser, "SAM template to run")
    parser.add_argument("--state-machine", help="which state machine of the template")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="execution input: a JSON file or JSON text (runs the workflow locally)")
    source.add_argument("--history", help="a history saved by `sfn-workers run --history FILE`")
    parser.add_argument("--rate", type=float, required=True, help="executions per second")
    parser.add_argument("--type", choices=["STANDARD", "EXPRESS"], default="STANDARD", help="workflow type")
    parser.add_argument("--runs", type=int, default=3, help="measured local runs to average (default 3)")
    parser.add_argument("--lambda-ms", type=float, help="assume this Lambda duration (ms) instead of the measured one")
    parser.add_argument("--memory-mb", type=int, default=512, help="Lambda memory for --history (default 512)")
    parser.add_argument("--arch", choices=["arm64", "x86_64"], default="arm64", help="Lambda architecture (prices)")
    parser.add_argument("--facts", help="JSON file overriding prices/quotas (see sfn_workers/local/data)")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def _read_input(text: str) -> Any:
    path = Path(text)
    return json.loads(path.read_text(encoding="utf-8") if path.is_file() else text)


def _usage_from_saved(path: Path, lambda_ms: float | None, memory_mb: int) -> Usage:
    events: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    for e in events:
        if isinstance(e.get("timestamp"), str):
            e["timestamp"] = datetime.fromisoformat(e["timestamp"])
    transitions, duration = usage_from_history(events)
    lambdas: Counter[str] = Counter()
    for e in events:
        details = e.get("taskScheduledEventDetails") or {}
        if details.get("resourceType") == "lambda":
            params = json.loads(details.get("parameters") or "{}")
            lambdas[str(params.get("FunctionName", "lambda")).rsplit(":", 1)[-1]] += 1
    ms = lambda_ms if lambda_ms is not None else 100.0
    return Usage(
        transitions=transitions,
        lambda_invocations=dict(lambdas),
        lambda_ms=dict.fromkeys(lambdas, ms),
        lambda_memory_mb=dict.fromkeys(lambdas, memory_mb),
        requests={},
        duration_ms=duration,
        uses_callbacks=any(
            str((e.get("taskScheduledEventDetails") or {}).get("resource", "")).endswith(".waitForTaskToken")
            for e in events
        ),
    )


def as_json(result: Estimate) -> dict[str, Any]:
    """The estimate as plain JSON values (the ``--json`` output)."""
    first = result.first_binding
    return {
        "rate": result.rate,
        "type": result.workflow_type,
        "usage": {**asdict(result.usage), "gb_seconds": result.usage.gb_seconds()},
        "per_million": {"STANDARD": result.per_million("STANDARD"), "EXPRESS": result.per_million("EXPRESS")},
        "breakdown_per_million": {
            "STANDARD": dict(result.standard_per_million),
            "EXPRESS": dict(result.express_per_million),
        },
        "per_month": result.per_month(),
        "quotas": [asdict(q) for q in result.quotas],
        "first_binding": asdict(first) if first else None,
        "s3_requests_per_prefix": dict(result.s3_requests_per_prefix),
        "warnings": list(result.warnings),
    }


def _estimate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not (args.rate > 0 and math.isfinite(args.rate)):
        raise UsageError(f"--rate must be a positive number of executions per second, not {args.rate:g}")
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    try:
        facts = load_facts(args.facts) if args.facts else load_facts()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--facts: {exc}") from exc
    if args.history:
        if not Path(args.history).is_file():
            raise UsageError(f"history not found: {args.history}")
        usage = _usage_from_saved(Path(args.history), args.lambda_ms, args.memory_mb)
        err.write("note: a saved history holds no AWS requests; run with --input to count them\n")
    else:
        template = template_path(args.template)
        assert template is not None  # required: a usage error otherwise
        try:
            order = _read_input(args.input)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--input is neither a JSON file nor JSON text: {exc}") from exc
        err.write(f"estimate: running {template} locally ({args.runs} measured runs after a warm-up)\n")
        try:
            # Handlers log to stdout, as in Lambda; here stdout is for the estimate: their lines go nowhere.
            with contextlib.redirect_stdout(io.StringIO()):
                usage = measure(
                    template, order, runs=args.runs, state_machine=args.state_machine, lambda_ms=args.lambda_ms
                )
        except RuntimeError as exc:
            err.write(f"sfn-workers estimate: {exc}\n")
            return EXIT_FAILED
    result = estimate(usage, args.rate, workflow_type=args.type, facts=facts, arch=args.arch)
    out.write((json.dumps(as_json(result), indent=2) if args.json else render(result)) + "\n")
    return EXIT_OK


COMMAND = Command(
    name="estimate",
    help="cost per million executions (Standard, Express) and the first AWS quota to bind, from a local run",
    description="Run the workflow locally (or read a saved history), count what one execution uses, and "
    "price it at --rate executions/s with AWS's public prices and quotas (sfn_workers/local/data).",
    add_arguments=_arguments,
    handler=_estimate,
)
