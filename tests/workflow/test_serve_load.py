"""Load: 200 concurrent executions of the sample order workflow through ``sfn-workers serve``.

GIVEN ``sfn-workers serve --template template.yaml`` running as its own process WHEN 200 executions
of the happy-path order are started at once through boto3 THEN every one succeeds with the right
output, the server's memory (RSS) comes back near where it was once they have finished (the
closed executions and their histories stay queryable: that is the retention rule's job), and
SIGTERM shuts it down cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port
from tests.serve_support import sfn_client

EXECUTIONS = 200
RSS_GROWTH_LIMIT_MB = 20


def _happy_input() -> dict[str, Any]:
    event = ROOT / "events" / "execution-happy.json"
    if not event.is_file():
        pytest.fail(f"{event} is missing: the sample workflow's happy-path event")
    return json.loads(event.read_text())  # type: ignore[no-any-return]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``sfn-workers serve`` in a child process, on a free port; yields (process, url, its output file).

    Its output goes to a file: the handlers log to stdout, and a pipe nobody drains would block them.
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's RSS")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sfn_workers.local.cli",
                "serve",
                "--template",
                "template.yaml",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Step Functions API on" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.1)
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _client(url: str) -> Any:
    return sfn_client(url, max_pool_connections=32, retries={"max_attempts": 2})


def _wait_all(sfn: Any, machine: str, expected: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]
        if not running:
            break
        time.sleep(0.25)
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
    executions: list[dict[str, Any]] = pages.build_full_result()["executions"]
    assert len(executions) == expected
    return executions


@pytest.mark.slow
def test_200_concurrent_sample_executions_through_boto3(served: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    process, url, log = served
    sfn = _client(url)
    order = _happy_input()
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]

    # GIVEN a warmed-up server (handlers imported, clients created): its RSS is the baseline
    warm = [
        sfn.start_execution(stateMachineArn=machine, name=f"warm-{i}", input=json.dumps(order))["executionArn"]
        for i in range(10)
    ]
    _wait_all(sfn, machine, len(warm), timeout=60)
    time.sleep(0.5)
    baseline = _rss_mb(process.pid)

    # WHEN 200 executions are started at once
    def start(i: int) -> str:
        return str(
            sfn.start_execution(stateMachineArn=machine, name=f"load-{i}", input=json.dumps(order))["executionArn"]
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        arns = list(pool.map(start, range(EXECUTIONS)))
    executions = _wait_all(sfn, machine, EXECUTIONS + len(warm), timeout=150)
    elapsed = time.monotonic() - started

    # THEN every execution succeeded with the order's output
    statuses = {e["executionArn"]: e["status"] for e in executions}
    assert [statuses[arn] for arn in arns] == ["SUCCEEDED"] * EXECUTIONS
    for arn in arns[:: EXECUTIONS // 10]:
        output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
        assert output["orderId"] == order["orderId"]
        assert (
            sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)["events"][0]["type"]
            == "ExecutionSucceeded"
        )

    # AND the server's memory came back near its baseline (histories of all 210 kept, compressed)
    time.sleep(1.0)
    after = _rss_mb(process.pid)
    print(f"\n{EXECUTIONS} executions in {elapsed:.1f} s; RSS {baseline:.1f} MB -> {after:.1f} MB")
    assert after - baseline < RSS_GROWTH_LIMIT_MB, (baseline, after)

    # AND SIGTERM shuts it down cleanly
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert "sfn-workers serve: stopped" in log.read_text(errors="replace")
