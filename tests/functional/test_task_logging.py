"""ctx.logger and the framework's lines: the user's Logger, correlation per invocation and thread, no token."""

from __future__ import annotations

import io
import json
import sys
import threading
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from sfn_workers import TaskContext, TaskFailure, task
from sfn_workers._log import get_logger
from sfn_workers.local.sfn_endpoint import MemoryTokens
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import handler_of


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_ctx_logger_is_the_logger_passed_to_task() -> None:
    stream = io.StringIO()
    logger = Logger(service="payments", stream=stream)

    @task(offload=False, logger=logger)
    def pay(payload: dict[str, Any], ctx: TaskContext) -> bool:
        ctx.logger.info("paying")
        return ctx.logger is logger

    assert pay({"sfn_context": {"execution": "e-1", "state": "Pay"}}, FakeLambdaContext(request_id="r-1")) is True
    (line,) = lines_of(stream)
    assert line["service"] == "payments"
    assert (line["execution"], line["state"], line["function_request_id"]) == ("e-1", "Pay", "r-1")


def test_without_a_logger_the_service_comes_from_powertools_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "inventory-from-env")

    @task(offload=False)
    def count(payload: dict[str, Any], ctx: TaskContext) -> str:
        return str(ctx.logger.service)

    assert count({}, None) == "inventory-from-env"
    assert get_logger().service == "inventory-from-env"


def test_failure_lines_carry_execution_state_and_request_id(tokens: MemoryTokens) -> None:
    stream = io.StringIO()
    logger = Logger(service="failure-lines", stream=stream)

    def decline(payload: dict[str, Any]) -> None:
        raise TaskFailure("CardDeclined", "issuer said no")

    token = tokens.issue()
    event = {"taskToken": token, "sfn_context": {"execution": "e-9", "state": "Charge"}}
    handler_of(decline, logger=logger)(event, FakeLambdaContext(request_id="r-9"))
    lines = lines_of(stream)
    messages = [line["message"] for line in lines]
    assert "task failed; reporting SendTaskFailure" in messages and "SendTaskFailure accepted" in messages
    for line in lines:
        assert (line.get("execution"), line.get("state"), line.get("function_request_id")) == ("e-9", "Charge", "r-9")
    # the keys belong to the invocation: a line after it has none of them
    logger.info("between invocations")
    after = lines_of(stream)[-1]
    assert "execution" not in after and "function_request_id" not in after


def test_tasks_in_threads_never_mix_up_their_keys() -> None:
    stream = io.StringIO()
    logger = Logger(service="threads", stream=stream)
    barrier = threading.Barrier(6)

    @task(offload=False, logger=logger)
    def work(payload: dict[str, Any], ctx: TaskContext) -> None:
        ctx.logger.info("before", extra={"me": payload["me"]})
        barrier.wait(5)  # every thread is inside its invocation at once
        ctx.logger.info("after", extra={"me": payload["me"]})

    def invoke(n: int) -> None:
        work({"me": f"e-{n}", "sfn_context": {"execution": f"e-{n}"}}, FakeLambdaContext(request_id=f"r-{n}"))

    threads = [threading.Thread(target=invoke, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    lines = lines_of(stream)
    assert len(lines) == 12
    for line in lines:
        assert line["execution"] == line["me"]
        assert line["function_request_id"] == "r-" + line["me"][2:]


def test_powertools_function_request_id_survives_the_task() -> None:
    stream = io.StringIO()
    logger = Logger(service="outer", stream=stream)
    inner = task(offload=False, logger=logger)(lambda payload: payload)

    @logger.inject_lambda_context
    def handler(event: Any, context: Any) -> Any:
        result = inner(event, context)
        logger.info("after the task")
        return result

    handler({"a": 1}, FakeLambdaContext(request_id="r-outer"))
    assert lines_of(stream)[-1]["function_request_id"] == "r-outer"


def test_log_event_never_logs_a_whole_token(tokens: MemoryTokens) -> None:
    stream = io.StringIO()
    logger = Logger(service="log-event", stream=stream)
    token = tokens.issue()
    handler = logger.inject_lambda_context(log_event=True)(handler_of(lambda payload: payload, logger=logger))
    handler({"taskToken": token, "orderId": "o-1"}, FakeLambdaContext())
    assert tokens.outcome(token).json() == {"orderId": "o-1"}
    text = stream.getvalue()
    assert '"orderId":"o-1"' in text  # the event was logged...
    assert token not in text and token[:40] not in text  # ...without its token


def test_each_framework_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    lock = threading.Lock()

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            with lock:
                writes.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stdout", Recorder())
    logger = get_logger("one-write-per-line")

    def chatter() -> None:
        for n in range(50):
            logger.info("line", extra={"n": n, "padding": "x" * 2000})

    threads = [threading.Thread(target=chatter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(writes) == 200
    for text in writes:
        assert text.endswith("\n") and text.count("\n") == 1
        json.loads(text)
