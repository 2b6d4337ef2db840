"""Benchmark of ``sfn-workers serve``: what the HTTP API costs over running executions in-process.

One server (the sample template, real time, the embedded emulator) and, side by side in rounds that
alternate: N happy-path executions started through the service object directly (no HTTP) and N
started through boto3 against the endpoint (16 client threads), each batch waited for to the end.
Also the latency of DescribeExecution while the server is idle and while a batch runs.

    .venv/bin/python bench/serve.py [--executions 100] [--rounds 3] [--write]

``--write`` puts the results in bench/README.md under "## Local endpoint (serve)".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Local endpoint (serve)"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait(service: Any, arns: list[str]) -> None:
    for arn in arns:
        service.wait(arn, 120)
    statuses = {service.describe_execution({"executionArn": arn})["status"] for arn in arns}
    if statuses != {"SUCCEEDED"}:
        raise SystemExit(f"executions did not all succeed: {statuses}")


def direct(service: Any, machine: str, order: str, n: int, tag: str) -> float:
    started = time.perf_counter()
    arns = [
        service.start_execution({"stateMachineArn": machine, "name": f"{tag}-{i}", "input": order})["executionArn"]
        for i in range(n)
    ]
    _wait(service, arns)
    return n / (time.perf_counter() - started)


def over_http(sfn: Any, service: Any, machine: str, order: str, n: int, tag: str) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        arns = list(
            pool.map(
                lambda i: sfn.start_execution(stateMachineArn=machine, name=f"{tag}-{i}", input=order)["executionArn"],
                range(n),
            )
        )
    _wait(service, arns)
    return n / (time.perf_counter() - started)


def latencies(sfn: Any, arn: str, count: int, stop: threading.Event | None = None) -> list[float]:
    out = []
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        t = time.perf_counter()
        sfn.describe_execution(executionArn=arn)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.chdir(ROOT)

    import boto3
    from botocore.config import Config

    from sfn_workers.local.api.server import start_server

    srv = start_server("template.yaml", port=0, keep_executions=10_000)
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=srv.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=32, retries={"max_attempts": 1}),
    )
    order = (ROOT / "events" / "execution-happy.json").read_text()
    machine = srv.service.list_state_machines({})["stateMachines"][0]["stateMachineArn"]
    n = args.executions
    try:
        direct(srv.service, machine, order, 10, "warm")
        rss_start = _rss_mb()
        done_arn = srv.service.list_executions({"stateMachineArn": machine})["executions"][0]["executionArn"]
        idle = latencies(sfn, done_arn, 200)
        rates: dict[str, list[float]] = {"direct": [], "http": []}
        loaded: list[float] = []
        for r in range(args.rounds):
            rates["direct"].append(direct(srv.service, machine, order, n, f"d{r}"))
            stop = threading.Event()
            box: list[float] = []
            probe = threading.Thread(target=lambda b=box, s=stop: b.extend(latencies(sfn, done_arn, 10_000, s)))
            probe.start()
            rates["http"].append(over_http(sfn, srv.service, machine, order, n, f"h{r}"))
            stop.set()
            probe.join()
            loaded += box
        time.sleep(1)
        rss_end = _rss_mb()
    finally:
        srv.close()

    ratios = [h / d for h, d in zip(rates["http"], rates["direct"], strict=True)]
    lines = [
        SECTION,
        "",
        f"`make bench-serve` (`.venv/bin/python bench/serve.py --write`). The sample template, real time, "
        f"the embedded emulator; {args.rounds} rounds of {n} happy-path executions started directly on the "
        "service object and then through boto3 over HTTP (16 client threads), each batch waited for to its end; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs shared with other work.",
        "",
        "| | executions/s (median) | rounds |",
        "|---|---|---|",
        f"| in-process (no HTTP) | {statistics.median(rates['direct']):.1f} | "
        + ", ".join(f"{x:.1f}" for x in rates["direct"])
        + " |",
        f"| through the endpoint (boto3) | {statistics.median(rates['http']):.1f} | "
        + ", ".join(f"{x:.1f}" for x in rates["http"])
        + " |",
        f"| ratio endpoint / in-process | {statistics.median(ratios):.2f} | "
        + ", ".join(f"{x:.2f}" for x in ratios)
        + " |",
        "",
        "DescribeExecution latency (ms), boto3 client in the same process:",
        "",
        "| | p50 | p90 | p99 | calls |",
        "|---|---|---|---|---|",
        f"| idle | {_pct(idle, 0.5):.1f} | {_pct(idle, 0.9):.1f} | {_pct(idle, 0.99):.1f} | {len(idle)} |",
        f"| while a batch runs | {_pct(loaded, 0.5):.1f} | {_pct(loaded, 0.9):.1f} | {_pct(loaded, 0.99):.1f} | "
        f"{len(loaded)} |",
        "",
        f"Process RSS after warm-up {rss_start:.0f} MB, after {2 * args.rounds * n} more executions "
        f"(all kept, histories compressed) {rss_end:.0f} MB.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        readme = ROOT / "bench" / "README.md"
        current = readme.read_text() if readme.exists() else "# Benchmarks\n"
        pattern = re.compile(re.escape(SECTION) + r"\n.*?(?=\n## |\Z)", re.S)
        if pattern.search(current):
            current = pattern.sub(lambda _m: text.rstrip("\n"), current)
        else:
            current = current.rstrip("\n") + "\n\n" + text
        readme.write_text(current if current.endswith("\n") else current + "\n")


if __name__ == "__main__":
    sys.exit(main())
