"""Runs one page's python blocks in order, in one namespace, as a reader would paste them.

Started by tests/docs/test_docs.py in a subprocess (cwd: a scratch copy of the repository's layout).
Reads one JSON request per line on stdin (``{"name": ..., "code": ...}``), answers one JSON line
(``{"ok": true}`` or ``{"ok": false, "error": traceback}``) on the original stdout; what the code
prints goes to stderr. Top-level ``await`` works (retries.md shows ``acall``), and every
``test_*`` function a block defines is called, with a fresh ``tmp_path`` or ``monkeypatch`` if it asks.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest


def run(code: str, name: str, namespace: dict[str, Any]) -> None:
    before = {key for key in namespace if key.startswith("test_")}
    compiled = compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # the documentation's own code, run on purpose
    if inspect.iscoroutine(result):
        asyncio.run(result)
    for key, test in list(namespace.items()):
        if key.startswith("test_") and key not in before and callable(test):
            wants = inspect.signature(test).parameters
            patch = pytest.MonkeyPatch()
            fixtures: dict[str, Any] = {"monkeypatch": patch}
            if "tmp_path" in wants:
                fixtures["tmp_path"] = Path(tempfile.mkdtemp(prefix="docs-"))
            arguments = {name: value for name, value in fixtures.items() if name in wants}
            try:
                outcome = test(**arguments)
                if inspect.iscoroutine(outcome):
                    asyncio.run(outcome)
            finally:
                patch.undo()


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            run(request["code"], request["name"], namespace)
            answer: dict[str, Any] = {"ok": True}
        except BaseException:
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stderr.flush()
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
