"""``sfn-workers run``: exit status 0/1/2, what it prints, and each bad-usage message."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from sfn_workers.local.cli import main

APP = Path(__file__).parent / "fixtures" / "app" / "template.yaml"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def write_app(root: Path, definition: Mapping[str, object] | str, functions: str = "Echo") -> Path:
    """A template with one function per name in ``functions`` and one state machine."""
    (root / "app.py").write_text("def handler(event, context):\n    return {'echo': event}\n")
    function = "    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ./\n      Handler: app.handler\n"
    resources = "".join(f"  {name}:\n{function}" for name in functions.split())
    (root / "machine.asl.json").write_text(definition if isinstance(definition, str) else json.dumps(definition))
    machine = (
        "  Machine:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n      DefinitionUri: machine.asl.json\n"
        "      DefinitionSubstitutions:\n        EchoArn: !GetAtt Echo.Arn\n"
    )
    template = root / "template.yaml"
    template.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n" + resources + machine)
    return template


ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Task", "Resource": "${EchoArn}", "End": True}}}


def test_success_prints_progress_to_stderr_and_the_output_to_stdout(tmp_path: Path) -> None:
    template = write_app(tmp_path, ECHO)
    history, graph = tmp_path / "history.json", tmp_path / "run.md"

    status, out, err = run_cli(
        "run", "--template", str(template), "--input", '{"n": 1}', "--history", str(history), "--graph", str(graph)
    )

    assert status == 0, err
    assert json.loads(out) == {"echo": {"n": 1}}
    assert "▶ Echo (Task)" in err
    assert "✔ Echo" in err
    assert "SUCCEEDED" in err
    events = json.loads(history.read_text())
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert "```mermaid" in graph.read_text()
    assert "<svg" in (tmp_path / "run.html").read_text()


def test_input_from_a_file_and_a_map_progress_bar() -> None:
    status, out, err = run_cli(
        "run", "-t", str(APP), "-s", "FanOutMachine", "--input", json.dumps({"items": list(range(8))})
    )

    assert status == 0, err
    assert len(json.loads(out)) == 8
    assert "FanOut [########################] 8/8" in err
    assert "▶ Count" not in err  # states inside a Map give way to its bar


def test_a_failed_execution_exits_1_with_error_and_cause(tmp_path: Path) -> None:
    given = tmp_path / "input.json"
    given.write_text(json.dumps({"key": "k", "failTimes": 99}))

    status, out, err = run_cli("run", "-t", str(APP), "-s", "RetryMachine", "--input", str(given))

    assert status == 1
    assert out == ""
    assert "FAILED" in err
    assert "error: Throttled" in err
    assert "↻ Flaky  retry after Throttled" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--template", "nope.yaml", "--input", "{}"], "template not found: nope.yaml"),
        (["run", "--template", str(APP), "--input", "missing.json"], "--input missing.json: no such file"),
        (["run", "--template", str(APP), "-s", "FanOutMachine"], "--input FILE|JSON is required"),
        (["run", "--template", str(APP), "--input", "{}"], "has several state machines"),
        (["run", "--template", str(APP), "-s", "Nope", "--input", "{}"], "has no state machine 'Nope'"),
        (["run", "--template", str(APP), "--input", "{}", "--graph", "out.png"], "use a .md, .html or .svg"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(argv: list[str], message: str) -> None:
    status, out, err = run_cli(*argv)

    assert status == 2
    assert out == ""
    assert message in err
    assert err.startswith("sfn-workers: error:")


def test_a_template_without_a_state_machine_is_bad_usage(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n")

    status, _, err = run_cli("run", "--template", str(template), "--input", "{}")

    assert status == 2
    assert "has no state machine" in err


def test_a_resource_that_no_function_matches_is_bad_usage(tmp_path: Path) -> None:
    definition = {
        "StartAt": "Ship",
        "States": {
            "Ship": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:Shipper"},
                "End": True,
            }
        },
    }
    template = write_app(tmp_path, definition)

    status, _, err = run_cli("run", "--template", str(template), "--input", "{}")

    assert status == 2
    assert "state 'Ship'" in err
    assert "Shipper" in err
    assert "matches no function" in err
    assert "Echo" in err  # the functions it could have meant


def test_invalid_asl_names_the_state_and_the_field(tmp_path: Path) -> None:
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "Next": "Nowhere"}}}
    template = write_app(tmp_path, definition)

    status, _, err = run_cli("run", "--template", str(template), "--input", "{}")

    assert status == 2
    assert "invalid state machine definition" in err
    assert "Echo" in err
    assert "Next" in err


def test_a_missing_definition_file_is_bad_usage(tmp_path: Path) -> None:
    template = write_app(tmp_path, ECHO)
    (tmp_path / "machine.asl.json").unlink()

    status, _, err = run_cli("run", "--template", str(template), "--input", "{}")

    assert status == 2
    assert "DefinitionUri not found" in err


def test_the_console_script_runs_from_the_template_directory(tmp_path: Path) -> None:
    write_app(tmp_path, ECHO)
    script = Path(sys.executable).with_name("sfn-workers")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}

    done = subprocess.run(
        [str(script), "run", "--input", '{"x": true}'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    failed = subprocess.run(
        [str(script), "run", "--input", "{}"], cwd=tmp_path.parent, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"echo": {"x": True}}
    assert failed.returncode == 2
    assert "no template.yaml in" in failed.stderr
    assert textwrap.dedent(failed.stderr).startswith("sfn-workers: error:")


def test_a_lambda_failure_prints_its_message_with_the_stack_trace_indented(tmp_path: Path) -> None:
    template = write_app(tmp_path, ECHO)
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n    raise ValueError('the stock service said no')\n", encoding="utf-8"
    )

    status, _, err = run_cli("run", "-t", str(template), "--input", "{}", "--output-dir", str(tmp_path), "--history")

    assert status == 1
    lines = err.splitlines()
    first = lines.index("error: ValueError: the stock service said no")
    assert lines[first + 1] == "    Traceback (most recent call last):"
    assert any(line.startswith("      File ") and "app.py" in line for line in lines[first + 1 :])
    history = json.loads((tmp_path / "history.json").read_text())
    cause = json.loads(
        next(e for e in history if e["type"] == "ExecutionFailed")["executionFailedEventDetails"]["cause"]
    )
    assert cause["errorMessage"] == "the stock service said no" and cause["stackTrace"]  # the full JSON is kept


def test_output_files_go_to_the_named_folder_or_the_current_one_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app").mkdir()
    template = write_app(tmp_path / "app", ECHO)

    status, _, err = run_cli(
        "run", "-t", str(template), "-i", "{}", "-o", str(tmp_path / "out"), "--graph", "--history"
    )
    monkeypatch.chdir(tmp_path)
    again, _, here = run_cli("run", "-t", str(template), "-i", "{}", "--history", "run.json")

    assert (status, again) == (0, 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["graph.html", "graph.md", "history.json"]
    assert "note:" not in err
    assert (tmp_path / "run.json").is_file()
    assert "note: writing run.json to the current directory" in here and "--output-dir DIR" in here


def test_version() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stdout(out):
        main(["--version"])

    assert exited.value.code == 0
    assert out.getvalue().startswith("sfn-workers 0.")
