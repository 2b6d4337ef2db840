"""Tracing: each pipeline step is an X-Ray subsegment, sent through the X-Ray SDK's own UDP emitter.

The handler runs in a fresh interpreter with a Lambda-like environment (LAMBDA_TASK_ROOT and a
sampled _X_AMZN_TRACE_ID, as the Lambda service sets them) and AWS_XRAY_DAEMON_ADDRESS pointing at
a UDP socket of this test, which plays the X-Ray daemon.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytest.importorskip("aws_xray_sdk")

HANDLER = textwrap.dedent(
    """
    from pydantic import BaseModel
    from sfn_workers import task, TaskContext

    class Order(BaseModel):
        orderId: str

    @task(offload=False)
    def handler(order: Order, ctx: TaskContext) -> dict:
        return {"orderId": order.orderId}

    event = {"orderId": "o-1", "sfn_context": {"execution": "exec-7", "state": "ValidateOrder"}}
    print(handler(event, None))
    """
)


def receive_documents(sock: socket.socket) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    sock.settimeout(2.0)
    while True:
        try:
            data, _ = sock.recvfrom(65_536)
        except TimeoutError:
            return documents
        header, _, body = data.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def run_traced(extra_env: dict[str, str]) -> list[dict[str, Any]]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    port = daemon.getsockname()[1]
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "validate-order",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "POWERTOOLS_SERVICE_NAME": "orders",
        **extra_env,
    }
    try:
        subprocess.run([sys.executable, "-c", HANDLER], env=env, check=True, timeout=60, capture_output=True)
        return receive_documents(daemon)
    finally:
        daemon.close()


def subsegments(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(doc: dict[str, Any]) -> None:
        found[doc["name"]] = doc
        for child in doc.get("subsegments", []):
            walk(child)

    for doc in documents:
        walk(doc)
    return found


def test_each_step_is_a_subsegment_annotated_with_execution_and_state() -> None:
    # GIVEN tracing on (in Lambda, tracing extra installed) WHEN the handler runs
    found = subsegments(run_traced({}))
    # THEN the X-Ray daemon received one subsegment per pipeline step, in the invocation's trace
    steps = ["resolve_input", "validate_input", "call", "validate_output", "offload_output"]
    for step in steps:
        doc = found[f"## {step}"]
        assert doc["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
        assert doc["annotations"] == {"execution": "exec-7", "state": "ValidateOrder"}
        assert doc["end_time"] >= doc["start_time"]


def test_tracing_disabled_sends_nothing() -> None:
    assert run_traced({"POWERTOOLS_TRACE_DISABLED": "true"}) == []
