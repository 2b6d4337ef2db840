"""Every python, sh and console block of README.md and docs/*.md runs as written (see blocks.py).

Each page runs in a scratch directory that links the repository's files (so ``events/...`` and
``template.yaml`` resolve and written files stay out of the working tree), blocks in page order:

* python blocks in one interpreter per page (driver.py), with fake credentials, a region and
  ``AWS_ENDPOINT_URL`` pointing at the test session's moto server: code written for a Lambda
  function finds "AWS" there, as it would in the cloud;
* sh and console blocks in bash with ``-e -o pipefail``, with *no* AWS variables and an empty
  ``HOME`` (no ~/.aws): a command needing a region or credentials must say so on the page;
  variables a block exports stay set for the page's later blocks.

The docs' port 8083 becomes a free port, so the tests do not collide with a server a reader (or
another test run) has open.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import free_port
from tests.docs.blocks import ROOT, Block, blocks, console_commands, pages

DOCS_PORT = "8083"
BLOCK_SECONDS = 300
ALL = [block for page in pages() for block in blocks(page)]
RUNNABLE = [block for block in ALL if block.runnable]


@dataclass
class Outcome:
    ok: bool
    report: str = ""


@dataclass
class _Page:
    """One page's scratch directory, environment, python driver and background processes."""

    scratch: Path
    port: str
    moto_url: str
    env: dict[str, str] = field(default_factory=dict)
    driver: subprocess.Popen[str] | None = None
    driver_log: IO[str] | None = None
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def python(self, block: Block) -> Outcome:
        if self.driver is None:
            self.driver_log = (self.scratch / "python.log").open("w+", encoding="utf-8")
            env = self.env | {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.moto_url,
                "PYTHONPATH": str(self.scratch),
            }
            self.driver = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("driver.py"))],
                cwd=self.scratch,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.driver_log,
                text=True,
            )
        assert self.driver.stdin is not None and self.driver.stdout is not None
        code = self.localise(block.text + block.code if block.directive == "setup" else block.code)
        self.driver.stdin.write(json.dumps({"name": block.id, "code": code}) + "\n")
        self.driver.stdin.flush()
        answer = self.driver.stdout.readline()
        if not answer:
            return Outcome(False, f"the python driver died:\n{self.log_tail()}")
        result: dict[str, Any] = json.loads(answer)
        return Outcome(bool(result["ok"]), f"{result.get('error', '')}\noutput:\n{self.log_tail()}")

    def shell(self, block: Block) -> Outcome:
        script = console_commands(block.code) if block.lang == "console" else block.code
        if block.directive == "setup":
            script = block.text + script
        script = self.localise(script)
        if block.directive == "background":
            return self.start(script)
        saved = self.scratch / ".docs-env"
        wrapped = f"[ -f {saved} ] && source {saved}\nset -e -o pipefail\n{script}\nexport -p > {saved}\n"
        process = subprocess.Popen(
            ["bash", "-c", wrapped],
            cwd=self.scratch,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=BLOCK_SECONDS)
        except subprocess.TimeoutExpired:
            _stop(process)
            return Outcome(False, f"still running after {BLOCK_SECONDS} s")
        finally:
            _stop(process)  # and anything it left running in the background
        expected = int(block.text) if block.directive == "exit" else 0
        return Outcome(process.returncode == expected, f"exit status {process.returncode}\n{output[-4000:]}")

    def start(self, script: str) -> Outcome:
        log = self.scratch / f"background-{len(self.background)}.log"
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=self.scratch,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.background.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return Outcome(False, f"exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            if self.port not in script or _listening(int(self.port)):
                time.sleep(0.2)
                return Outcome(True)
            time.sleep(0.1)
        return Outcome(False, f"not listening on port {self.port} after 60 s:\n{log.read_text()[-4000:]}")

    def localise(self, code: str) -> str:
        return code.replace(DOCS_PORT, self.port)

    def log_tail(self) -> str:
        if self.driver_log is None:
            return ""
        self.driver_log.flush()
        self.driver_log.seek(0)
        return self.driver_log.read()[-4000:]

    def close(self) -> None:
        for process in self.background:
            _stop(process)
        if self.driver is not None:
            assert self.driver.stdin is not None
            self.driver.stdin.close()
            try:
                self.driver.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        if self.driver_log is not None:
            self.driver_log.close()


def _stop(process: subprocess.Popen[Any]) -> None:
    """Stop a block's process group: SIGINT (a server shuts down cleanly), then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=10)
            time.sleep(0.1)
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _scratch(directory: Path) -> Path:
    """A directory that looks like the repository (links to its files) but keeps what is written."""
    for entry in ROOT.iterdir():
        if entry.name == ".venv" and entry.is_dir():
            # The venv this test runs in, with a fresh stamp: `make demo` must use it, not reinstall
            # (a worktree's stamp may be older than pyproject.toml, or missing after a plain pip install).
            (directory / ".venv").mkdir()
            for part in entry.iterdir():
                if part.name != ".installed":
                    (directory / ".venv" / part.name).symlink_to(part)
            (directory / ".venv" / ".installed").touch()
        elif entry.name not in (".git", ".sfn-workers") and not entry.name.startswith(("run.", ".pytest")):
            (directory / entry.name).symlink_to(entry)
    (directory / "home").mkdir()
    return directory


def _environment(scratch: Path) -> dict[str, str]:
    """This process's environment without AWS settings, a fresh HOME, the venv's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "SFN_WORKERS_"))}
    env["HOME"] = str(scratch / "home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def run_page(page: str, directory: Path, moto_url: str) -> dict[int, Outcome]:
    """Run every runnable, not skipped block of ``page`` in order; the outcome by opening line."""
    scratch = _scratch(directory)
    state = _Page(scratch, str(free_port()), moto_url, _environment(scratch))
    outcomes: dict[int, Outcome] = {}
    try:
        for block in (b for b in RUNNABLE if b.page == page and b.directive != "skip"):
            run = state.python if block.lang == "python" else state.shell
            outcomes[block.line] = run(block)
    finally:
        state.close()
    return outcomes


@pytest.fixture(scope="session")
def page_outcomes(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    done: dict[str, dict[int, Outcome]] = {}

    def outcomes(page: str) -> dict[int, Outcome]:
        if page not in done:
            done[page] = run_page(page, tmp_path_factory.mktemp("docs"), moto_server)
        return done[page]

    yield outcomes


def test_the_docs_have_blocks_to_run_and_every_skip_gives_a_reason() -> None:
    assert {b.page for b in RUNNABLE} >= {"README.md", "docs/local-runner.md", "docs/local-endpoint.md"}
    for block in RUNNABLE:
        if block.directive == "skip":
            assert len(block.text) > 10, f"{block.id}: say why this block is not run"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_the_block_runs_as_written(block: Block, page_outcomes: Callable[[str], dict[int, Outcome]]) -> None:
    if block.directive == "skip":
        pytest.skip(block.text)
    outcome = page_outcomes(block.page)[block.line]
    assert outcome.ok, f"{block.id} ({block.lang}) failed:\n{block.code}\n---\n{outcome.report}"
