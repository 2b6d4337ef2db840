"""The Makefile as a new user meets it: `make help`, and the one line a machine without Python 3.12 gets."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make(directory: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", *argv], cwd=directory, capture_output=True, text=True, timeout=60
    )


def test_without_python_312_make_test_stops_at_once_with_one_line_saying_how_to_get_it(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")  # a fresh clone: no venvs yet

    done = make(tmp_path, "test", "PY312=")

    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Python 3.12 not found" in lines[0] and "PY312=" in lines[0] and "pyenv install 3.12" in lines[0]
    assert not (tmp_path / ".venv").exists()  # nothing was installed before the message


def test_make_help_lists_every_target_with_its_comment() -> None:
    text = (ROOT / "Makefile").read_text()
    documented = re.findall(r"^## .*\n([a-z][a-z0-9-]*):", text, re.M)
    targets = re.findall(r"^([a-z][a-z0-9-]*):", text, re.M)

    done = make(ROOT, "help")

    assert done.returncode == 0
    listed = [line.split()[1] for line in done.stdout.splitlines()]
    assert listed == documented
    assert set(targets) == set(documented), "every target needs a ## line above it"
