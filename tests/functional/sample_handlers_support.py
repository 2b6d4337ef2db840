"""Helpers for the sample handlers' tests (no tests here).

The handlers live in ``handlers/`` as top-level modules (Lambda imports ``validate_order`` from the
function's code directory), and read their settings when imported, as on a cold start. So each
test imports a fresh copy with the environment it sets, and gives it fresh boto3 clients for this
test's emulator endpoints.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import sfn_workers.testing

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
EVENTS = ROOT / "events"
SHARED_MODULES = ("order_models",)


class FakeLambdaContext:
    """The part of Lambda's context that sfn-workers and Powertools read."""

    function_name = "sample-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sample-function"

    def __init__(self, seconds: float = 30.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


class HandlerLoader:
    """Imports handler modules fresh (a cold start) and forgets them after the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.loaded: list[str] = []

    def load(self, name: str, **env: str) -> ModuleType:
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        for stale in (name, *SHARED_MODULES):
            sys.modules.pop(stale, None)
        if str(HANDLERS) not in sys.path:
            self.monkeypatch.syspath_prepend(str(HANDLERS))
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        sfn_workers.testing.reset()  # this test's endpoints, not a previous test's
        self.loaded.append(name)
        return module

    def forget(self) -> None:
        for module in (*self.loaded, *SHARED_MODULES):
            sys.modules.pop(module, None)


@pytest.fixture(name="handlers")
def handlers_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[HandlerLoader]:
    loader = HandlerLoader(monkeypatch)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "order-workflow-tests")
    yield loader
    loader.forget()


def make_bucket(name: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=name)


def make_idempotency_table(name: str) -> None:
    """The template's IdempotencyTable, on the emulator."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
