"""``sfn-workers estimate``: the cost and the first binding quota of a workflow at a rate, from a local run.

::

    sfn-workers estimate [--template template.yaml] [--state-machine NAME] --input FILE|JSON --rate N
                         [--type STANDARD|EXPRESS] [--runs 3] [--lambda-ms MS] [--arch arm64|x86_64]
                         [--facts FILE] [--json]
    sfn-workers estimate --history FILE --rate N ...     # a history saved by `sfn-workers run --history`

With ``--input`` it runs the workflow locally (one warm-up run, then ``--runs`` measured ones) and
counts everything; with ``--history`` it reads a saved history, which holds the transitions and the
Lambda invocations but not the AWS requests the functions made. Exit status 0, or 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sfn_workers.local.estimate import Estimate, Usage, estimate, measure, render, usage_from_history
from sfn_workers.local.facts import load_facts

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``estimate`` (shared by ``sfn-workers estimate`` and ``python -m``)."""
    parser.add_argument("--template", default="template.yaml", help="SAM template (default: template.yaml)")
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


def run(args: argparse.Namespace, out: Any = None, err: Any = None) -> int:
    """Run ``estimate`` with parsed arguments; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        facts = load_facts(args.facts) if args.facts else load_facts()
        if args.history:
            usage = _usage_from_saved(Path(args.history), args.lambda_ms, args.memory_mb)
            err.write("note: a saved history holds no AWS requests; run with --input to count them\n")
        else:
            err.write(f"estimate: running {args.template} locally ({args.runs} measured runs after a warm-up)\n")
            # Handlers log to stdout, as in Lambda; here stdout is for the estimate: their lines go nowhere.
            with contextlib.redirect_stdout(io.StringIO()):
                usage = measure(
                    args.template, _read_input(args.input), runs=args.runs,
                    state_machine=args.state_machine, lambda_ms=args.lambda_ms,
                )  # fmt: skip
        result = estimate(usage, args.rate, workflow_type=args.type, facts=facts, arch=args.arch)
    except (OSError, ValueError, RuntimeError) as exc:
        err.write(f"sfn-workers estimate: {exc}\n")
        return 2
    out.write((json.dumps(as_json(result), indent=2) if args.json else render(result)) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfn-workers estimate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
