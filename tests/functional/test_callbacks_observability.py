"""What an operator sees: log lines that never hold a whole token, and a metric per outcome."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sfn_workers import CallbackDeliveryError, TaskContext
from sfn_workers._log import get_logger
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from sfn_workers.testing import FakeLambdaContext
from tests.functional.test_callbacks_support import handler_of

pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Everything sfn-workers logs, formatted as Powertools writes it (JSON with every key)."""
    powertools = get_logger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(powertools.registered_formatter)
    target: logging.Logger = powertools._logger
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def run_every_path(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint) -> list[str]:
    """Success, failure, closed token, undeliverable, watchdog, heartbeats; returns the tokens."""

    def work(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        case = payload["case"]
        if case == "raise":
            raise RuntimeError("bad input from upstream")
        if case == "slow":
            threading.Event().wait(0.85)
        if case == "beat":
            ctx.heartbeat()
        return {"case": case}

    handler = handler_of(work, timeout_margin_ms=250)  # the watchdog fires at 0.75 s of 1 s
    issued = []
    for case in ("ok", "raise", "closed", "undeliverable", "slow", "beat"):
        token = tokens.issue()
        issued.append(token)
        if case == "closed":
            tokens.close(token)
        if case == "undeliverable":

            def for_this_token(request: dict[str, Any], t: str = token) -> bool:
                return request.get("taskToken") == t

            sfn_endpoint.inject("*", Fault.refuse(), when=for_this_token)
        try:
            handler({"taskToken": token, "case": case}, FakeLambdaContext(1.0 if case == "slow" else 5))
        except CallbackDeliveryError:
            assert case == "undeliverable"
    return issued


def test_no_log_line_holds_a_whole_token(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, log_text: io.StringIO
) -> None:
    issued = run_every_path(tokens, sfn_endpoint)
    text = log_text.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) >= 6
    for token in issued:
        assert token not in text
        assert token[:40] not in text  # not even most of it
    # yet each line about a token says which one, shortened
    reported = [line for line in lines if "SendTask" in line["message"] or "watchdog" in line["message"]]
    assert reported and all(line["task_token"].endswith("(600 chars)") for line in reported)
    messages = " | ".join(line["message"] for line in lines)
    assert "watchdog: reporting WorkerTimeout" in messages
    assert "closed already" in messages
    assert "could not be delivered" in messages
    assert "its result is dropped" in messages


def emitted_metrics(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, details) per occurrence, read from the EMF documents on stdout."""
    found: list[tuple[str, dict[str, str]]] = []
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Dimensions"] == [["service"]] and "service" in document
            for metric in directive["Metrics"]:
                name = metric["Name"]
                details = document.get("details", {}).get(name, {})
                if not details:
                    found.extend((name, {}) for _ in range(int(document[name])))
                for key, by_value in details.items():
                    for value, times in by_value.items():
                        found.extend((name, {key: value}) for _ in range(times))
    return found


def test_each_outcome_is_counted(tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, capsys: Any) -> None:
    run_every_path(tokens, sfn_endpoint)
    metrics = emitted_metrics(capsys.readouterr().out)
    names = [name for name, _ in metrics]
    assert names.count("CallbackSuccess") == 2  # ok, beat
    assert ("CallbackFailure", {"error": "RuntimeError"}) in metrics
    assert ("CallbackFailure", {"error": "WorkerTimeout"}) in metrics
    assert names.count("CallbackTokenClosed") == 1
    assert names.count("CallbackUndeliverable") == 1
    assert names.count("WatchdogFired") == 1
    assert names.count("Heartbeats") == 1


def test_each_invocation_writes_one_emf_document_in_the_namespace_set_in_code(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint, capsys: Any
) -> None:
    # GIVEN a callback task with heartbeats whose metrics namespace is set in code, on a Powertools Metrics
    from aws_lambda_powertools import Metrics

    def work(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        ctx.heartbeat()
        ctx.heartbeat()
        return payload

    handler = handler_of(work, metrics=Metrics(namespace="Orders"))
    # WHEN a burst of 20 invocations runs, 5 of them on tokens already closed
    for n in range(20):
        token = tokens.issue()
        if n % 4 == 0:
            tokens.close(token)
        handler({"taskToken": token, "n": n}, FakeLambdaContext(5))
    # THEN exactly one document per invocation, each in the namespace set in code
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(documents) == 20
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents} == {"Orders"}
    # AND each sums its own invocation's metrics: two heartbeats and one outcome, or a closed token
    delivered = [d for d in documents if "CallbackSuccess" in d]
    assert len(delivered) == 15 and all(d["Heartbeats"] == 2 for d in delivered)
    assert sum(d.get("CallbackTokenClosed", 0) for d in documents) == 5


def test_a_direct_mode_failure_is_counted_in_the_invocations_document(capsys: Any) -> None:
    from sfn_workers import TaskFailure

    def work(payload: dict[str, Any]) -> dict[str, Any]:
        raise TaskFailure("PayloadPointerError", "the object expired")

    handler = handler_of(work)
    with pytest.raises(Exception, match="the object expired"):
        handler({"n": 1}, FakeLambdaContext(5))
    [document] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert document["Errors"] == 1 and document["PayloadPointerError"] == 1  # the at-risk alarm's metric
    assert document["details"]["Errors"] == {"error": {"PayloadPointerError": 1}}
