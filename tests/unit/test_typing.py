"""Typing: @task and @task(...) keep the wrapped function's types for mypy --strict users."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "typing_samples"
pytestmark = pytest.mark.slow  # a cold mypy run each: `make test` runs them, `make check` does not


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            "--follow-imports=silent",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_decorated_handlers_keep_their_types() -> None:
    done = mypy(SAMPLES / "typed_handler.py")
    assert done.returncode == 0, done.stdout
    sample = "tests.unit.typing_samples.typed_handler"
    assert (
        f"TaskHandler[[order: {sample}.Order, ctx: sfn_workers.context.TaskContext], {sample}.Checked]" in done.stdout
    )
    assert f"def (order: {sample}.Order) -> {sample}.Checked" in done.stdout


@pytest.mark.slow
def test_calling_the_wrapped_function_wrongly_is_a_type_error() -> None:
    done = mypy(SAMPLES / "misuse.py")
    assert done.returncode == 1
    assert 'Argument 1 has incompatible type "str"; expected "Order"' in done.stdout
