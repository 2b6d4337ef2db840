"""Fixtures shared by every test layer.

``moto_server`` starts moto's ThreadedMotoServer on 127.0.0.1 with a random port, once per session;
``aws`` points boto3 at it through ``AWS_ENDPOINT_URL_*`` (real HTTP, like a Lambda reaching AWS)
and resets its state between tests.

The suite writes nothing into the working tree (tests use ``tmp_path``): a run that leaves a new
file or directory there fails, naming it (``pytest_sessionfinish`` below).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Every test starts with fresh boto3 clients and a full retry budget (what users enable the same way).
from sfn_workers.testing import sfn_workers_reset  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# No test may reach real AWS: fake credentials and a fixed region, whatever the machine has.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "sfn-workers-tests")

EMULATED_SERVICES = ("S3", "SQS", "SNS", "DYNAMODB")

# No example database: hypothesis would keep one in .hypothesis/ of the working directory. A failing
# example is printed with the failure (pin it with @example to keep it).
settings.register_profile("sfn-workers-tests", database=None)
settings.load_profile("sfn-workers-tests")
# Its caches (constants, unicode data) go to the temporary directory, not .hypothesis/ of the cwd.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"sfn-workers-hypothesis-{os.getuid()}")

# What tools, not tests, keep in the tree: venvs, caches, coverage's data.
NOT_LEFT_BY_TESTS = re.compile(
    r"(^|/)(\.venv[^/]*|\.mypy_cache|\.ruff_cache|\.pytest_cache|__pycache__|\.coverage[^/]*)/?$"
)
_TREE_BEFORE = pytest.StashKey[set[str] | None]()


def files_outside_git(root: Path) -> set[str] | None:
    """Untracked and ignored paths of the working tree (git's short form), or None without git."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return {
        line[3:]
        for line in done.stdout.splitlines()
        if line[:2] in ("??", "!!") and not NOT_LEFT_BY_TESTS.search(line[3:])
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE_BEFORE] = files_outside_git(ROOT)


@pytest.hookimpl(trylast=True)  # after session fixtures are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_TREE_BEFORE, None)
    after = files_outside_git(ROOT)
    if before is None or after is None:
        return
    left = sorted(after - before)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the tests left files in the working tree (use tmp_path): {', '.join(left)}"
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1:<random port>; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """boto3 reaches the moto server for S3, SQS, SNS and DynamoDB; state is reset after the test."""
    for service in EMULATED_SERVICES:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_server)
    yield moto_server
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10).read()


@pytest.fixture
def sfn_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A strict local SendTask* endpoint (``SfnEndpoint`` over ``MemoryTokens``), reached by boto3
    through ``AWS_ENDPOINT_URL_SFN``; ``sfn_endpoint.backend`` records each token's outcomes.

    Clients cache their endpoint: build handlers with fresh ``Clients()`` inside the test.
    """
    from sfn_workers.local.sfn_endpoint import MemoryTokens, SfnEndpoint

    endpoint = SfnEndpoint(MemoryTokens())
    endpoint.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", endpoint.url)
    try:
        yield endpoint
    finally:
        endpoint.stop()
