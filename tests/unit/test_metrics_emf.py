"""The framework's metrics: one valid EMF document per invocation, namespace from Powertools' config."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from sfn_workers import _metrics
from sfn_workers._metrics import Recorder


def _valid_emf(line: str) -> dict[str, Any]:
    """Parse one document and check what CloudWatch requires of EMF (or it drops the metrics)."""
    document: dict[str, Any] = json.loads(line)
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int)
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and directive["Namespace"]
        assert len(directive["Metrics"]) <= 100
        for group in directive["Dimensions"]:
            assert all(isinstance(document[key], str) for key in group)
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float)
            assert metric["Unit"] in {"Count", "Bytes", "Milliseconds"}
    return document


def test_one_invocation_writes_one_document_with_every_metric_summed() -> None:
    # GIVEN an invocation that retries twice, offloads, and fails a callback with an at-risk error
    lines: list[str] = []
    with _metrics.invocation(Recorder(write=lines.append, service="orders")):
        _metrics.count("Retries", reason="throttling")
        _metrics.count("Retries", reason="server")
        _metrics.emit("OffloadedBytes", 1000, "Bytes")
        _metrics.emit("OffloadedBytes", 500, "Bytes")
        _metrics.count("CallbackFailure", error="WorkerTimeout")
        assert lines == []  # nothing written while the invocation runs
    # THEN exactly one document, valid EMF, with the sums and the details as properties
    [line] = lines
    doc = _valid_emf(line)
    assert (doc["Retries"], doc["OffloadedBytes"], doc["CallbackFailure"], doc["WorkerTimeout"]) == (2, 1500, 1, 1)
    assert doc["details"]["Retries"] == {"reason": {"throttling": 1, "server": 1}}
    assert doc["service"] == "orders"


def test_a_burst_of_invocations_writes_one_document_each() -> None:
    lines: list[str] = []
    for _ in range(50):
        with _metrics.invocation(Recorder(write=lines.append)):
            _metrics.count("CallbackSuccess")
            _metrics.count("Heartbeats")
    assert len(lines) == 50
    assert all(_valid_emf(line)["CallbackSuccess"] == 1 for line in lines)


def test_an_invocation_without_metrics_writes_nothing() -> None:
    lines: list[str] = []
    with _metrics.invocation(Recorder(write=lines.append)):
        pass
    assert lines == []


def test_the_namespace_set_in_code_on_a_powertools_metrics_object_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN POWERTOOLS_METRICS_NAMESPACE and a Metrics object whose namespace was set in code
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FromEnv")
    lines: list[str] = []
    in_code = Metrics(namespace="Orders")
    with _metrics.invocation(Recorder(metrics=in_code, write=lines.append)):
        _metrics.count("CallbackSuccess")
    with _metrics.invocation(Recorder(write=lines.append)):
        _metrics.count("CallbackSuccess")
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    with _metrics.invocation(Recorder(write=lines.append)):
        _metrics.count("CallbackSuccess")
    namespaces = [_valid_emf(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in lines]
    assert namespaces == ["Orders", "FromEnv", "sfn-workers"]


def test_an_exception_through_the_invocation_is_counted_and_the_document_still_written() -> None:
    lines: list[str] = []
    with pytest.raises(KeyError), _metrics.invocation(Recorder(write=lines.append)):
        _metrics.count("Retries", reason="server")
        raise KeyError("x")
    doc = _valid_emf(lines[0])
    assert doc["Errors"] == 1 and doc["details"]["Errors"] == {"error": {"KeyError": 1}}


def test_a_thread_that_outlives_the_invocation_writes_its_own_document_safely() -> None:
    # GIVEN a heartbeat-like thread holding the invocation's recorder
    lines: list[str] = []
    recorder = Recorder(write=lines.append)
    late = threading.Event()
    done = threading.Event()

    def heartbeat() -> None:
        late.wait(5)
        recorder.add("Heartbeats", 1)
        done.set()

    thread = threading.Thread(target=heartbeat)
    thread.start()
    with _metrics.invocation(recorder):
        _metrics.count("CallbackSuccess")
    # WHEN it adds a metric after the invocation's document was written
    late.set()
    assert done.wait(5)
    thread.join(5)
    # THEN nothing is lost: a second document holds it, and the first one is unchanged
    assert [sorted(k for k in _valid_emf(line) if k[0].isupper()) for line in lines] == [
        ["CallbackSuccess"],
        ["Heartbeats"],
    ]


def test_the_watchdog_metric_is_written_at_once() -> None:
    lines: list[str] = []
    with _metrics.invocation(Recorder(write=lines.append)):
        _metrics.count("Retries", reason="server")
        _metrics.count("WatchdogFired")
        # the sandbox may be frozen from here on: what was gathered is already out
        assert [sorted(k for k in _valid_emf(line) if k[0].isupper()) for line in lines] == [
            ["Retries", "WatchdogFired"]
        ]


def test_outside_an_invocation_each_metric_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    _metrics.count("Retries", reason="connection")
    [line] = capsys.readouterr().out.splitlines()
    assert _valid_emf(line)["Retries"] == 1


def test_every_documented_metric_has_a_unit_and_a_description() -> None:
    assert {"WatchdogFired", "CallbackUndeliverable", "RetryBudgetExhausted", "PayloadPointerError"} <= set(
        _metrics.METRICS
    )
    assert all(unit in {"Count", "Bytes"} and when for unit, when in _metrics.METRICS.values())
