"""Helpers shared by the callback tests (no tests here).

Handlers get their own ``Clients`` (the endpoint's port changes per test) built on one shared
boto3 session, with the Step Functions client created before the call: that is what a warm Lambda
has, and it keeps timing-sensitive rows (watchdog, heartbeats) about the callbacks, not about
loading botocore's models.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from sfn_workers import task
from sfn_workers._aws import Clients
from sfn_workers.local.sfn_endpoint import MemoryTokens

_session: Any = None


def warm_clients() -> Clients:
    """Fresh clients (for this test's endpoint) with the Step Functions one already created."""
    global _session
    import boto3

    if _session is None:
        _session = boto3.session.Session()
    clients = Clients()
    clients._session = _session  # share botocore's loaded models between tests
    clients.get("stepfunctions")
    return clients


def handler_of(fn: Any, **options: Any) -> Any:
    """``@task(...)`` over ``fn`` with offloading off unless given, and warm clients."""
    options.setdefault("offload", False)
    return task(clients=warm_clients(), **options)(fn)


def callback_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sfn-workers-")]


def wait_for_no_callback_threads(timeout: float = 2.0) -> list[str]:
    give_up = time.monotonic() + timeout
    while callback_threads() and time.monotonic() < give_up:
        time.sleep(0.01)
    return callback_threads()


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


ClosedAs = Literal["TaskTimedOut", "TaskDoesNotExist", "never issued"]
"""How a task's token stopped being open (for tests parametrized over the three)."""


def closed_token(tokens: MemoryTokens, closed_as: ClosedAs) -> str:
    """A token whose task is over: closed with ``closed_as``, or one the backend never issued."""
    if closed_as == "never issued":
        return "AQCEAAAAKgAAAAMAAAAA-not-a-real-token"
    token = tokens.issue()
    tokens.close(token, code=closed_as)
    return token
