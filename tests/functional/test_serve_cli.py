"""``sfn-workers serve`` on the command line: bad usage answers exit status 2 with a clear message."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def test_a_missing_template_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from sfn_workers.local.cli import main

    assert main(["serve", "--template", "no-such-template.yaml", "--port", "0"]) == 2
    assert "template not found: no-such-template.yaml" in capsys.readouterr().err


def test_not_a_template_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from sfn_workers.local.cli import main

    assert main(["serve", "--template", "tests/functional/__init__.py", "--port", "0"]) == 2
    assert "not a SAM/CloudFormation template" in capsys.readouterr().err


def test_a_port_in_use_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sfn_workers.local.cli import main

    monkeypatch.chdir(tmp_path)  # no template.yaml here: serve starts without one

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
