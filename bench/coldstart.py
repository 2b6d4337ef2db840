"""Cold start and warm per-call cost of an sfn-workers handler against a hand-written one.

Run: ``make bench-coldstart`` (or ``.venv/bin/python bench/coldstart.py [--runs 20] [--calls 20000]``).

The hand-written handler is what a careful engineer writes without sfn-workers: pydantic models
validated by hand and a Powertools Logger with ``inject_lambda_context``. Both handlers take the
same two-field model and return the same output.

- cold: the package is byte-compiled first, as pip does when it installs the Lambda layer (this
  machine sets PYTHONDONTWRITEBYTECODE, which would otherwise make every run compile sfn_workers
  from source while pydantic and Powertools load compiled); then a fresh interpreter per run,
  timing ``import`` + decorating + the first small direct-mode invocation inside the process
  (interpreter start-up is the same for both and left out); the two variants alternate so that
  machine noise hits both alike; medians are compared.
- warm: both handlers in one process, called many times alternately; the per-call medians of
  several rounds are compared.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CONTEXT = textwrap.dedent(
    """
    class LambdaContext:
        function_name = "check-order"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:check-order"
        aws_request_id = "6f1c0a4e-0000-4000-8000-000000000000"
        def get_remaining_time_in_millis(self):
            return 30_000
    EVENT = {"orderId": "o-1", "quantity": 3}
    """
)

SFN_WORKERS = textwrap.dedent(
    """
    from pydantic import BaseModel
    from sfn_workers import task

    class Order(BaseModel):
        orderId: str
        quantity: int

    class Checked(BaseModel):
        orderId: str
        inStock: bool

    @task
    def handler(order: Order) -> Checked:
        return Checked(orderId=order.orderId, inStock=order.quantity < 10)
    """
)

HAND_WRITTEN = textwrap.dedent(
    """
    from aws_lambda_powertools import Logger
    from pydantic import BaseModel

    logger = Logger(service="check-order")

    class Order(BaseModel):
        orderId: str
        quantity: int

    class Checked(BaseModel):
        orderId: str
        inStock: bool

    @logger.inject_lambda_context
    def handler(event, context):
        order = Order.model_validate(event)
        return Checked(orderId=order.orderId, inStock=order.quantity < 10).model_dump(mode="json")
    """
)

VARIANTS = {"sfn-workers": SFN_WORKERS, "hand-written": HAND_WRITTEN}

COLD_PROBE = """
import time
_t0 = time.perf_counter()
{source}
{context}
_result = handler(EVENT, LambdaContext())
_elapsed = time.perf_counter() - _t0
import json, sys
sys.stderr.write(json.dumps({{"seconds": _elapsed, "result": _result}}) + "\\n")
"""


def cold_once(name: str) -> float:
    code = COLD_PROBE.format(source=VARIANTS[name], context=CONTEXT)
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "SFN_WORKERS_BUCKET": "bench-payloads"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["result"] == {"orderId": "o-1", "inStock": True}, report
    return float(report["seconds"])


def warm(calls: int, rounds: int) -> dict[str, float]:
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    handlers = {}
    for name, source in VARIANTS.items():
        namespace: dict[str, object] = {}
        exec(compile(source + CONTEXT, name, "exec"), namespace)
        handlers[name] = (namespace["handler"], namespace["LambdaContext"](), namespace["EVENT"])  # type: ignore[operator]
    per_call: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(rounds):
        for name, (handler, context, event) in handlers.items():
            start = time.perf_counter()
            for _ in range(calls):
                handler(event, context)  # type: ignore[operator]
            per_call[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(times) for name, times in per_call.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per variant (cold)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round (warm)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (warm)")
    args = parser.parse_args()

    package = Path(__file__).resolve().parent.parent / "sfn_workers"
    compileall.compile_dir(str(package), quiet=1)
    cold: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for i in range(args.runs):
        order = list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            cold[name].append(cold_once(name))
        print(f"\rcold runs: {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    cold_median = {name: statistics.median(times) for name, times in cold.items()}
    warm_median = warm(args.calls, args.rounds)

    cold_ratio = cold_median["sfn-workers"] / cold_median["hand-written"]
    warm_ratio = warm_median["sfn-workers"] / warm_median["hand-written"]
    print(f"python {sys.version.split()[0]}, {args.runs} fresh processes per variant, {args.calls}x{args.rounds} warm")
    print("| measure | sfn-workers | hand-written | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| cold: import + decorate + first call (median) | {cold_median['sfn-workers'] * 1000:.1f} ms "
        f"| {cold_median['hand-written'] * 1000:.1f} ms | {cold_ratio:.2f}x | <= 1.05x |"
    )
    print(
        f"| warm: per call (median of rounds) | {warm_median['sfn-workers'] * 1e6:.1f} us "
        f"| {warm_median['hand-written'] * 1e6:.1f} us | {warm_ratio:.2f}x | <= 1.50x |"
    )


if __name__ == "__main__":
    main()
