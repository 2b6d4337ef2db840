"""Soak benchmark of ``sfn-workers serve``: good and hostile executions for minutes, nothing lost.

Starts ``sfn-workers serve --virtual-time --port 0`` as a child process on 127.0.0.1 (nothing else is
contacted) and drives it with boto3 from several client threads for ``--seconds`` (default 120, at
most 600). Each round starts a mix of executions:

- good: a Pass chain, a Map over 50 items, JSONata arithmetic, an Express machine run synchronously;
- hostile: a Pass->Pass loop without end (AWS's 25,000-event history cap ends it), a StringMatches
  glob that backtracks in a regex engine, a JSONata regex with nested quantifiers, a 10^8-item
  ``$range``, an Express machine that waits an hour (StartSyncExecution answers at the 5-minute limit),
  NaN and 10,000-deep inputs (refused), a request with a foreign Host header (refused), a client
  trickling its request (disconnected), and StopExecution of a running loop.

Meanwhile it samples the server's resident memory every 5 s and times every API call. At the end
it waits for the executions to close and checks that every accepted one is still described
(executions lost must be 0).

    .venv/bin/python bench/serve_soak.py [--seconds 120] [--clients 4] [--write]

``--write`` puts the results in bench/README.md under "## Local endpoint soak (serve_soak)".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEADING = "Local endpoint soak (serve_soak)"
ROLE = "arn:aws:iam::123456789012:role/soak"
MAX_SECONDS = 600


def _machine(states: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"StartAt": next(iter(states)), "States": states, **extra})


MACHINES: dict[str, tuple[str, str]] = {  # name -> (type, definition)
    "pass-chain": (
        "STANDARD",
        _machine(
            {
                "A": {"Type": "Pass", "Result": {"n": 1}, "Next": "B"},
                "B": {"Type": "Pass", "Parameters": {"m.$": "States.MathAdd($.n, 1)"}, "Next": "C"},
                "C": {"Type": "Succeed"},
            }
        ),
    ),
    "map-50": (
        "STANDARD",
        _machine(
            {
                "M": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": 10,
                    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                    "End": True,
                }
            }
        ),
    ),
    "jsonata": (
        "STANDARD",
        _machine(
            {"J": {"Type": "Pass", "Output": "{% $sum($states.input.items) * 2 %}", "End": True}},
            QueryLanguage="JSONata",
        ),
    ),
    "express-quick": ("EXPRESS", _machine({"P": {"Type": "Pass", "End": True}})),
    "loop": ("STANDARD", _machine({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}})),
    "glob": (
        "STANDARD",
        _machine(
            {
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.s", "StringMatches": "*a*a*a*a*a*a*a*a*b", "Next": "Y"}],
                    "Default": "N",
                },
                "Y": {"Type": "Succeed"},
                "N": {"Type": "Succeed"},
            }
        ),
    ),
    "regex": (
        "STANDARD",
        _machine(
            {"R": {"Type": "Pass", "Output": "{% $match($states.input.s, /^(a+)+$/) %}", "End": True}},
            QueryLanguage="JSONata",
        ),
    ),
    "range": (
        "STANDARD",
        _machine({"R": {"Type": "Pass", "Parameters": {"r.$": "States.ArrayRange(1, 100000000, 1)"}, "End": True}}),
    ),
    "express-forever": ("EXPRESS", _machine({"W": {"Type": "Wait", "Seconds": 3600, "End": True}})),
}

HOSTILE_STRING = "a" * 300 + "c"


class Soak:
    def __init__(self, url: str, pid: int) -> None:
        import boto3
        from botocore.config import Config

        self.url = url
        self.pid = pid
        self.sfn = boto3.client(
            "stepfunctions",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                inject_host_prefix=False,
                max_pool_connections=32,
                retries={"max_attempts": 1},
                read_timeout=400,
                connect_timeout=5,
            ),
        )
        self.arns: dict[str, str] = {}  # machine name -> ARN
        self.accepted: list[str] = []
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.rss: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def call(self, action: str, **request: Any) -> Any:
        from botocore.exceptions import ClientError

        began = time.perf_counter()
        try:
            return getattr(self.sfn, action)(**request)
        except ClientError as exc:
            with self.lock:
                self.errors[f"{action}: {exc.response['Error']['Code']}"] += 1
            return None
        finally:
            with self.lock:
                self.latency[action].append((time.perf_counter() - began) * 1000)

    def create_machines(self) -> None:
        for name, (kind, definition) in MACHINES.items():
            answer = self.call("create_state_machine", name=name, definition=definition, roleArn=ROLE, type=kind)
            self.arns[name] = answer["stateMachineArn"]

    def start(self, machine: str, value: Any) -> None:
        answer = self.call("start_execution", stateMachineArn=self.arns[machine], input=json.dumps(value))
        if answer is not None:
            with self.lock:
                self.accepted.append(answer["executionArn"])

    def raw(self, body: str, host: str | None = None) -> int:
        """A hand-made request (hostile input, a foreign Host header); returns the HTTP status."""
        hostport = self.url.removeprefix("http://")
        conn = http.client.HTTPConnection(hostport, timeout=30)
        conn.putrequest("POST", "/", skip_host=True)
        conn.putheader("Host", host or hostport)
        data = body.encode()
        for key, value in (
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "AWSStepFunctions.StartExecution"),
            ("Content-Length", str(len(data))),
        ):
            conn.putheader(key, value)
        conn.endheaders(data)
        status = conn.getresponse().status
        conn.close()
        return status

    def trickle(self) -> str:
        """A slowloris client: one header byte every half second until the server hangs up."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(60):
                try:
                    sock.sendall(b"X")
                    sock.settimeout(0.5)
                    if sock.recv(1) == b"":
                        return "disconnected"
                except TimeoutError:
                    continue
                except OSError:
                    return "disconnected"
        return "still connected"

    def round(self, n: int) -> None:
        self.start("pass-chain", {})
        self.start("map-50", {"items": list(range(50))})
        self.start("jsonata", {"items": list(range(20))})
        self.start("glob", {"s": HOSTILE_STRING})
        self.start("regex", {"s": HOSTILE_STRING})
        self.start("range", {})
        answer = self.call("start_sync_execution", stateMachineArn=self.arns["express-quick"], input="{}")
        self.count("sync express-quick", answer)
        if n % 5 == 0:
            self.start("loop", {})
            answer = self.call("start_sync_execution", stateMachineArn=self.arns["express-forever"], input="{}")
            self.count("sync express-forever", answer)
        if n % 3 == 0:
            arn = self.call("start_execution", stateMachineArn=self.arns["loop"], input="{}")
            if arn is not None:
                with self.lock:
                    self.accepted.append(arn["executionArn"])
                self.call("stop_execution", executionArn=arn["executionArn"], error="Soak", cause="stopped")
            machine = self.arns["pass-chain"]
            nan = json.dumps({"stateMachineArn": machine, "input": '{"x": NaN}'})
            deep = json.dumps({"stateMachineArn": machine, "input": "[" * 10_000 + "]" * 10_000})
            self.count_status("NaN input", self.raw(nan))
            self.count_status("deep input", self.raw(deep))
            self.count_status("foreign Host", self.raw("{}", host="rebind.example"))
        self.call("list_executions", stateMachineArn=self.arns["pass-chain"], maxResults=20)
        with self.lock:
            recent = self.accepted[-1] if self.accepted else None
        if recent is not None:
            self.call("describe_execution", executionArn=recent)

    def count(self, what: str, answer: Any) -> None:
        with self.lock:
            self.outcomes[f"{what}: {answer['status'] if answer else 'refused'}"] += 1

    def count_status(self, what: str, status: int) -> None:
        with self.lock:
            self.outcomes[f"{what}: HTTP {status}"] += 1

    def client(self) -> None:
        n = 0
        while not self.stop.is_set():
            self.round(n)
            n += 1

    def sample_rss(self, began: float) -> None:
        while True:
            self.rss.append((time.monotonic() - began, _rss_mb(self.pid)))
            if self.stop.wait(5):
                return

    def drain(self, timeout: float) -> tuple[Counter[str], int]:
        """Wait for the accepted executions to close; (statuses, executions lost)."""
        deadline = time.monotonic() + timeout
        statuses: Counter[str] = Counter()
        lost = 0
        for arn in self.accepted:
            while True:
                answer = self.call("describe_execution", executionArn=arn)
                if answer is None:
                    lost += 1
                    break
                if answer["status"] != "RUNNING" or time.monotonic() > deadline:
                    statuses[answer["status"]] += 1
                    break
                time.sleep(0.2)
        return statuses, lost


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _start_server() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"}
    command = [sys.executable, "-m", "sfn_workers.local.cli", "serve", "--virtual-time", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT / "bench")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
    if match is None:
        proc.kill()
        raise SystemExit(f"serve did not start: {first!r}")
    return proc, match[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    proc, url = _start_server()
    soak = Soak(url, proc.pid)
    began = time.monotonic()
    try:
        soak.create_machines()
        sampler = threading.Thread(target=soak.sample_rss, args=(began,), daemon=True)
        sampler.start()
        clients = [threading.Thread(target=soak.client, daemon=True) for _ in range(args.clients)]
        for thread in clients:
            thread.start()
        trickled = Counter(soak.trickle() for _ in range(3))
        soak.stop.wait(max(0.0, seconds - (time.monotonic() - began)))
        soak.stop.set()
        for thread in clients:
            thread.join(timeout=420)
        statuses, lost = soak.drain(timeout=120)
        soak.rss.append((time.monotonic() - began, _rss_mb(proc.pid)))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    report = _report(soak, seconds, args.clients, statuses, lost, trickled, proc.returncode)
    print(report)
    if args.write:
        sys.path.insert(0, str(ROOT / "bench"))
        from readme_section import write_section

        write_section(HEADING, report)
    if lost:
        raise SystemExit(f"{lost} executions lost")


def _report(
    soak: Soak, seconds: int, clients: int, statuses: Counter[str], lost: int, trickled: Counter[str], code: int | None
) -> str:
    lines = [
        f"## {HEADING}",
        "",
        f"`.venv/bin/python bench/serve_soak.py --seconds {seconds} --write`: `sfn-workers serve --virtual-time` in a "
        f"child process on 127.0.0.1, {clients} boto3 client threads for {seconds} s, a mix of good and hostile "
        f"executions (see the script's docstring); Python {platform.python_version()}, {os.cpu_count()} CPUs "
        "shared with other work.",
        "",
        f"- executions accepted: {len(soak.accepted)}; **executions lost: {lost}**; "
        f"their statuses at the end: {dict(sorted(statuses.items()))}",
        f"- refused as designed: {dict(sorted(soak.errors.items()))}",
        f"- other outcomes: {dict(sorted(soak.outcomes.items()))}; trickling clients: {dict(trickled)}",
        f"- server exit status after SIGTERM: {code}",
        "",
        _reading(soak),
        "",
        "| API call | calls | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for action, values in sorted(soak.latency.items()):
        lines.append(f"| {action} | {len(values)} | {_pct(values, 0.5):.1f} | {_pct(values, 0.99):.1f} |")
    lines += ["", "| time (s) | server RSS (MiB) |", "|---|---|"]
    step = max(1, len(soak.rss) // 12)
    for at, rss in soak.rss[::step] + ([soak.rss[-1]] if (len(soak.rss) - 1) % step else []):
        lines.append(f"| {at:.0f} | {rss:.0f} |")
    return "\n".join(lines) + "\n"


def _reading(soak: Soak) -> str:
    grown = soak.rss[-1][1] - soak.rss[0][1] if soak.rss else float("nan")
    per = grown * 1024 / max(1, len(soak.accepted))
    return (
        "Reading: FAILED are the hostile executions ending as AWS ends them (the endless loop at the "
        "25,000-event history cap with `States.Runtime`, the 10^8-item `States.ArrayRange` with "
        "`States.IntrinsicFailure`, the nested-quantifier regex with `States.QueryEvaluationError`), "
        "ABORTED the stopped loops; the backtracking glob succeeds (matched in linear time). The API "
        "kept answering throughout (p99 above, with 2 shared CPUs also running the executions). "
        f"Resident memory grows with what serve keeps: every execution's description while it runs, "
        f"histories within 32 MiB (docs/local-endpoint.md, Retention): {grown:.0f} MiB over "
        f"{len(soak.accepted)} executions here, about {per:.0f} KiB each."
    )


if __name__ == "__main__":
    main()
