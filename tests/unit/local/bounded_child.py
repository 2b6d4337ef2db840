"""Run a snippet in a child Python under hard limits: address space (RLIMIT_AS) and a wall-clock kill.

A regex that backtracks holds the GIL, so an in-process timeout cannot interrupt it; a child that
is killed can. The snippet prints one JSON line last; that value is returned.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any


def run_bounded(code: str, *, seconds: float = 60.0, memory_mb: int = 1024) -> Any:
    """The JSON value ``code`` prints last; fails the test when the child dies, runs out of memory or time."""
    limit = memory_mb * 1024 * 1024

    def apply_limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=seconds,  # kills the child: a hard time limit, not a timing assertion
        preexec_fn=apply_limits,  # only setrlimit: safe between fork and exec
        check=False,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
