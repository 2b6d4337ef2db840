"""In-process functions with different environments run at the same time, each seeing its own variables.

GIVEN a template with two functions whose ``COLOR`` differs, where ``Waiter`` blocks until ``Releaser``
sets a shared latch, WHEN a Map runs both THEN both finish released (they overlapped: the waiter
could only be released while it was running) and each saw its own ``COLOR``. Before, calls with
different environments took turns, so the waiter's wait ran out (its 30 s latch timeout).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import run_execution
from sfn_workers.local.lambdas import invocation_environment

WAITER = """
import os
import fn_env_latch

def handler(event, context):
    released = fn_env_latch.RELEASED.wait(30)
    return {"color": os.environ["COLOR"], "released": released, "seen": os.getenv("COLOR")}
"""
RELEASER = """
import os
import fn_env_latch

def handler(event, context):
    fn_env_latch.RELEASED.set()
    return {"color": os.environ["COLOR"], "released": True, "seen": os.getenv("COLOR")}
"""
LATCH = "import threading\nRELEASED = threading.Event()\n"

DEFINITION = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "StartAt": "Which",
                "States": {
                    "Which": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$", "StringEquals": "wait", "Next": "Wait"}],
                        "Default": "Release",
                    },
                    "Wait": {"Type": "Task", "Resource": "${WaiterArn}", "End": True},
                    "Release": {"Type": "Task", "Resource": "${ReleaserArn}", "End": True},
                },
            },
            "End": True,
        }
    },
}


def _template(root: Path) -> Path:
    for name, code in (("waiter", WAITER), ("releaser", RELEASER)):
        (root / name).mkdir()
        (root / name / "app.py").write_text(textwrap.dedent(code))
    template = root / "template.yaml"
    template.write_text(
        textwrap.dedent(
            f"""\
            Transform: AWS::Serverless-2016-10-31
            Globals:
              Function:
                Runtime: python3.12
                Handler: app.handler
                Timeout: 60
            Resources:
              Waiter:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: waiter/
                  Environment: {{Variables: {{COLOR: red}}}}
              Releaser:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: releaser/
                  Environment: {{Variables: {{COLOR: blue}}}}
              Machine:
                Type: AWS::Serverless::StateMachine
                Properties:
                  Definition: {json.dumps(DEFINITION)}
                  DefinitionSubstitutions:
                    WaiterArn: !GetAtt Waiter.Arn
                    ReleaserArn: !GetAtt Releaser.Arn
            """
        )
    )
    return template


@pytest.mark.timeout(120)
def test_a_map_over_two_functions_with_different_environments_overlaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"  # outside both CodeUris: one latch module for both functions
    shared.mkdir()
    (shared / "fn_env_latch.py").write_text(LATCH)
    monkeypatch.syspath_prepend(str(shared))
    monkeypatch.delitem(__import__("sys").modules, "fn_env_latch", raising=False)
    before = os.environ.get("COLOR")

    result: Any = run_execution(_template(tmp_path), ["wait", "release"])

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [
        {"color": "red", "released": True, "seen": "red"},
        {"color": "blue", "released": True, "seen": "blue"},
    ]
    assert os.environ.get("COLOR") == before  # nothing leaked into the process


def test_what_a_handler_sets_stays_with_its_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SFN_WORKERS_TEST_ONLY", raising=False)
    monkeypatch.setenv("SFN_WORKERS_TEST_KEEP", "process")
    with invocation_environment({"SFN_WORKERS_TEST_ONLY": "inside"}):
        assert os.environ["SFN_WORKERS_TEST_ONLY"] == "inside"
        assert os.environ["SFN_WORKERS_TEST_KEEP"] == "process"  # the process's variables show through
        os.environ["SFN_WORKERS_TEST_SET"] = "by the handler"
        del os.environ["SFN_WORKERS_TEST_KEEP"]
        assert "SFN_WORKERS_TEST_KEEP" not in os.environ
        assert dict(os.environ)["SFN_WORKERS_TEST_SET"] == "by the handler"
    assert "SFN_WORKERS_TEST_ONLY" not in os.environ
    assert "SFN_WORKERS_TEST_SET" not in os.environ
    assert os.environ["SFN_WORKERS_TEST_KEEP"] == "process"
