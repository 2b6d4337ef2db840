"""Callback costs and guarantees, measured against the strict local Step Functions endpoint.

Run: ``make bench-callbacks`` or ``.venv/bin/python bench/callbacks.py`` (``--write`` replaces the
"## Callbacks" section of bench/README.md with the results; ``--quick`` for a smoke run).

Everything talks real HTTP on 127.0.0.1 to ``sfn_workers.local.sfn_endpoint`` through
``AWS_ENDPOINT_URL_SFN``, so ratios compare like with like on whatever machine runs them:

1. Overhead: warm invocations of the same small task, the variants interleaved round by round:
   a bare ``send_task_success`` call (the floor: one HTTP round trip), direct mode (no report),
   callback mode (report + watchdog thread), callback mode with a heartbeat thread too. One call
   of each in turn, medians of single calls.
2. Delivery under throttling: every Send* call is throttled with probability p. A worker that
   calls ``send_task_success`` once (no retries) against an sfn-workers handler (jittered retries
   inside a 3 s Lambda): share of tokens left without an outcome, calls per token, time per report.
3. Watchdog: a function that never returns, in a Lambda with 600 ms left and a 300 ms margin: how
   long before the Lambda's end the WorkerTimeout was accepted.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from readme_section import write_section  # bench/ is on sys.path when a bench runs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the bench measures, it does not log
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "sfn-workers-bench")


class FakeLambda:
    aws_request_id = "bench"

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class TimedTokens:
    """MemoryTokens that also notes when each failure was accepted (monotonic seconds)."""

    def __init__(self) -> None:
        from sfn_workers.local.sfn_endpoint import MemoryTokens

        self.inner = MemoryTokens()
        self.failed_at: dict[str, float] = {}

    def issue(self) -> str:
        return self.inner.issue()

    def send_task_success(self, token: str, output: str) -> None:
        self.inner.send_task_success(token, output)

    def send_task_failure(self, token: str, error: str | None, cause: str | None) -> None:
        self.inner.send_task_failure(token, error, cause)
        self.failed_at[token] = time.monotonic()

    def send_task_heartbeat(self, token: str) -> None:
        self.inner.send_task_heartbeat(token)


def quiet_stdout() -> Any:
    """Metrics are EMF lines on stdout: send them nowhere while measuring."""
    return open(os.devnull, "w")  # closed and restored by the caller


def make_handler(**options: Any) -> Any:
    from sfn_workers import task
    from sfn_workers._aws import Clients

    def work(payload: dict[str, Any]) -> dict[str, Any]:
        return {"orderId": payload.get("orderId"), "ok": True}

    clients = Clients()
    clients.get("stepfunctions")
    return task(offload=False, clients=clients, **options)(work)


# -- 1. overhead -------------------------------------------------------------------------------


def overhead(rounds: int, per_round: int) -> dict[str, list[float]]:
    import boto3
    from botocore.config import Config

    from sfn_workers.local.sfn_endpoint import MemoryTokens, SfnEndpoint

    tokens = MemoryTokens()
    samples: dict[str, list[float]] = {"bare": [], "direct": [], "callback": [], "callback+heartbeats": []}
    with SfnEndpoint(tokens) as endpoint:
        os.environ["AWS_ENDPOINT_URL_SFN"] = endpoint.url
        bare = boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        plain = make_handler()
        beating = make_handler(heartbeat_seconds=60)

        def run_bare() -> None:
            bare.send_task_success(taskToken=tokens.issue(), output='{"orderId":"o-1","ok":true}')

        def run_direct() -> None:
            plain({"orderId": "o-1"}, FakeLambda(30))

        def run_callback() -> None:
            plain({"orderId": "o-1", "taskToken": tokens.issue()}, FakeLambda(30))

        def run_beating() -> None:
            beating({"orderId": "o-1", "taskToken": tokens.issue()}, FakeLambda(30))

        variants = {
            "bare": run_bare,
            "direct": run_direct,
            "callback": run_callback,
            "callback+heartbeats": run_beating,
        }
        for fn in variants.values():  # warm up
            for _ in range(20):
                fn()
        # One call of each variant in turn, so that every variant sees the same load on a shared
        # machine; the median of the single calls is then robust to the load's spikes.
        for _ in range(rounds * per_round):
            for name, fn in variants.items():
                started = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - started) * 1e6)
    return samples


# -- 2. delivery under throttling --------------------------------------------------------------


def under_throttling(probability: float, count: int, seed: int) -> dict[str, dict[str, float]]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint

    rng = random.Random(seed)
    tokens = MemoryTokens()
    results: dict[str, dict[str, float]] = {}
    with SfnEndpoint(tokens) as endpoint:
        os.environ["AWS_ENDPOINT_URL_SFN"] = endpoint.url
        endpoint.inject("*", Fault.throttle(), times=None, when=lambda request: rng.random() < probability)
        naive = boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
        handler = make_handler()
        for name in ("one call", "sfn-workers"):
            issued = [tokens.issue() for _ in range(count)]
            before = len(endpoint.calls)
            raised = 0
            started = time.perf_counter()
            for token in issued:
                if name == "one call":
                    try:
                        naive.send_task_success(taskToken=token, output='{"ok":true}')
                    except ClientError:
                        raised += 1
                else:
                    try:
                        handler({"orderId": "o", "taskToken": token}, FakeLambda(3))
                    except Exception:
                        raised += 1
            elapsed = time.perf_counter() - started
            hanging = sum(1 for token in issued if not tokens.outcomes[token])
            results[name] = {
                "hanging": hanging / count,
                "raised": raised / count,
                "calls": (len(endpoint.calls) - before) / count,
                "ms": elapsed / count * 1000,
            }
    return results


# -- 3. watchdog -------------------------------------------------------------------------------


def watchdog(runs: int) -> list[float]:
    from sfn_workers import task
    from sfn_workers._aws import Clients
    from sfn_workers.local.sfn_endpoint import SfnEndpoint

    tokens = TimedTokens()
    early_ms: list[float] = []
    with SfnEndpoint(tokens) as endpoint:
        os.environ["AWS_ENDPOINT_URL_SFN"] = endpoint.url
        clients = Clients()
        clients.get("stepfunctions")
        for _ in range(runs):
            token = tokens.issue()
            release = threading.Event()

            def hang(payload: dict[str, Any], release: threading.Event = release) -> None:
                release.wait(5)

            handler = task(offload=False, clients=clients, timeout_margin_ms=300)(hang)
            context = FakeLambda(0.6)
            runner = threading.Thread(target=handler, args=({"taskToken": token}, context))
            runner.start()
            give_up = time.monotonic() + 5
            while token not in tokens.failed_at and time.monotonic() < give_up:
                time.sleep(0.001)
            release.set()
            runner.join()
            early_ms.append((context.deadline - tokens.failed_at[token]) * 1000)
    return early_ms


# -- report ------------------------------------------------------------------------------------


def report(quick: bool) -> str:
    rounds, per_round = (3, 20) if quick else (10, 40)
    saved = sys.stdout
    sys.stdout = quiet_stdout()
    try:
        started = time.perf_counter()
        cost = overhead(rounds, per_round)
        throttled = {p: under_throttling(p, 40 if quick else 100, seed=7) for p in (0.2, 0.5, 0.8)}
        early = watchdog(5 if quick else 20)
        took = time.perf_counter() - started
    finally:
        sys.stdout.close()
        sys.stdout = saved

    floor = statistics.median(cost["bare"])
    lines = [
        "## Callbacks",
        "",
        f"`make bench-callbacks` (`.venv/bin/python bench/callbacks.py --write`); {took:.0f} s, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs (shared). Real HTTP to the strict local "
        "endpoint (`sfn_workers.local.sfn_endpoint`) on 127.0.0.1; the variants alternate call by call.",
        "",
        f"### Overhead per warm invocation ({rounds * per_round} calls each, interleaved; medians)",
        "",
        "| variant | µs | x one bare `send_task_success` |",
        "|---|---|---|",
    ]
    for name, label in (
        ("bare", "bare boto3 `send_task_success` (one HTTP round trip)"),
        ("direct", "direct mode (validate, call, return; no report)"),
        ("callback", "callback mode (+ watchdog thread, SendTaskSuccess)"),
        ("callback+heartbeats", "callback mode + heartbeat thread"),
    ):
        value = statistics.median(cost[name])
        lines.append(f"| {label} | {value:,.0f} | {value / floor:.2f} |")
    lines += [
        "",
        "### Delivery when Step Functions throttles each Send* call with probability p",
        "",
        "Tokens without an outcome (the execution would hang), calls per token, wall time per report.",
        "sfn-workers raises `CallbackDeliveryError` for the tokens it could not report, so Lambda retries them.",
        "",
        "| p | one call: left hanging | sfn-workers: left hanging | calls / token (one call / sfn-workers) | "
        "ms / token (one call / sfn-workers) |",
        "|---|---|---|---|---|",
    ]
    for p, cells in throttled.items():
        one, ours = cells["one call"], cells["sfn-workers"]
        lines.append(
            f"| {p:.1f} | {one['hanging']:.1%} | {ours['hanging']:.1%} | {one['calls']:.2f} / {ours['calls']:.2f} | "
            f"{one['ms']:.1f} / {ours['ms']:.1f} |"
        )
    lines += [
        "",
        f"### Watchdog ({len(early)} runs: 600 ms left, `timeout_margin_ms=300`, the function never returns)",
        "",
        "WorkerTimeout accepted this long before the Lambda's end (target: the 300 ms margin less one round trip):",
        "",
        f"mean {statistics.mean(early):.0f} ms, min {min(early):.0f} ms, max {max(early):.0f} ms.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the results into bench/README.md")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    text = report(args.quick)
    print(text)
    if args.write:
        write_section("Callbacks", text)


if __name__ == "__main__":
    main()
