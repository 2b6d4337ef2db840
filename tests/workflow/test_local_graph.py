"""Pictures of a run (--graph) and the path analysis behind them, on real executions."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

from sfn_workers.local import run_execution
from sfn_workers.local.graph import mermaid, svg, trace, write_graph

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"

DEFINITION: dict[str, Any] = {
    "StartAt": "Fetch",
    "States": {
        "Fetch": {
            "Type": "Task",
            "Resource": ARN + "Fetch",
            "Retry": [{"ErrorEquals": ["ConnectionError"], "IntervalSeconds": 1, "MaxAttempts": 3}],
            "Next": "Ready",
        },
        "Ready": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Sleep"}],
            "Default": "Give up",
        },
        "Give up": {"Type": "Fail", "Error": "NotReady"},
        "Sleep": {"Type": "Wait", "Seconds": 86_400, "Next": "Fan"},
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Pass", "End": True}}},
            "ResultPath": "$.each",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Quiet", "States": {"Quiet": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "Explode",
                    "States": {"Explode": {"Type": "Task", "Resource": ARN + "Explode", "End": True}},
                },
            ],
            "End": True,
        },
    },
}


def handlers() -> dict[str, Any]:
    attempts = {"n": 0}

    def fetch(event: Any, context: Any) -> dict[str, Any]:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("flaky")
        return {"ok": True, "items": [1, 2, 3]}

    def explode(event: Any, context: Any) -> None:
        raise ValueError("boom")

    return {"Fetch": fetch, "Explode": explode}


def test_trace_reads_the_path_retries_and_the_failing_states_from_the_history() -> None:
    began = time.perf_counter()
    result = run_execution(DEFINITION, {}, handlers=handlers())

    assert result.status == "FAILED"
    assert result.error == "ValueError"
    assert result.stop - result.start >= timedelta(days=1)  # the one-day Wait, simulated
    assert time.perf_counter() - began < 30
    run = trace(result.history)
    assert run.retries == {"Fetch": 2}
    assert run.entered["Each"] == 3
    assert ("Fetch", "Ready") in run.transitions and ("Ready", "Sleep") in run.transitions
    assert ("Ready", "Give up") not in run.transitions
    assert run.failed_state == "Explode"
    assert run.failed_states == ["Explode", "Both"]
    assert run.errors["Explode"] == "ValueError"


def node_ids(text: str) -> dict[str, str]:
    """State name -> Mermaid node id, from lines like ``s3(["Give up (Fail)"])`` or ``subgraph s5["Both ..."]``."""
    ids = {}
    for line in text.splitlines():
        words = line.strip().removeprefix("subgraph ")
        if '"' in words and "|" not in words and not words.startswith(("class", "linkStyle")):
            identifier = words.split("[")[0].split("(")[0].split("{")[0]
            label = words.split('"')[1]
            ids[label.split(" (")[0]] = identifier
    return ids


def test_mermaid_marks_visited_unvisited_failed_and_retried_states() -> None:
    result = run_execution(DEFINITION, {}, handlers=handlers())
    text = mermaid(DEFINITION, trace(result.history))

    assert text.startswith("flowchart TD")
    assert '"Fetch (Task) ↻2"' in text
    assert '"Each (Pass) x3"' in text
    ids = node_ids(text)
    assert f"class {ids['Give up']} unvisited" in text
    assert f"class {ids['Fetch']} visited" in text
    assert f"class {ids['Explode']} failed" in text
    assert f"class {ids['Both']} failed" in text
    assert f"{ids['Ready']} ==>" in text  # a transition taken is bold
    assert f'{ids["Ready"]} -->|"Default"| {ids["Give up"]}' in text  # one never taken is not


def test_svg_and_html_are_self_contained_and_name_every_state(tmp_path: Path) -> None:
    result = run_execution(DEFINITION, {}, handlers=handlers())

    picture = svg(DEFINITION, trace(result.history))
    root = ET.fromstring(picture)  # well-formed XML
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for state in ("Fetch", "Ready", "Give up", "Sleep", "Fan", "Each", "Both", "Quiet", "Explode"):
        assert state in texts
    written = write_graph(tmp_path / "run.html", DEFINITION, result)
    page = written[0].read_text()
    assert [p.name for p in written] == ["run.html", "run.md"]
    assert "<svg" in page and "FAILED" in page and "boom" in page
    namespaces = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")
    assert "<script" not in page and "http://" not in page.replace(namespaces[0], "").replace(namespaces[1], "")
    assert "```mermaid" in written[1].read_text()
