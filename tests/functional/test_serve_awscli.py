"""The AWS CLI works unchanged against ``sfn-workers serve`` with ``--endpoint-url``.

GIVEN the local endpoint WHEN a user drives it with ``aws stepfunctions ...`` THEN they get the same
JSON answers and error messages as from AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROLE = "arn:aws:iam::123456789012:role/local"


def _aws_cli() -> str:
    found = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if found is None:
        pytest.fail("the AWS CLI (awscli, in the dev extra) is not installed: run make setup")
    return found


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from sfn_workers.local.service import start_server

    srv = start_server(None, port=0)
    try:
        yield srv.url
    finally:
        srv.close(grace=5)


def _aws(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        }
    )
    return subprocess.run(
        [_aws_cli(), "--endpoint-url", endpoint, "--output", "json", "stepfunctions", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_aws_cli_creates_starts_and_describes(endpoint: str) -> None:
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}})
    machine = _ok(
        _aws(endpoint, "create-state-machine", "--name", "cli", "--definition", definition, "--role-arn", ROLE)
    )["stateMachineArn"]
    execution = _ok(_aws(endpoint, "start-execution", "--state-machine-arn", machine, "--input", '{"a": 1}'))[
        "executionArn"
    ]
    deadline = time.monotonic() + 20
    described = _ok(_aws(endpoint, "describe-execution", "--execution-arn", execution))
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
        described = _ok(_aws(endpoint, "describe-execution", "--execution-arn", execution))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"ok": True}


def test_aws_cli_shows_the_error_code(endpoint: str) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:absent"
    result = _aws(endpoint, "describe-state-machine", "--state-machine-arn", missing)
    assert result.returncode != 0
    assert "StateMachineDoesNotExist" in result.stderr
