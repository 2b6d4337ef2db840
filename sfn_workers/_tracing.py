"""X-Ray subsegments for each pipeline step, through Powertools Tracer, only where tracing is on.

Tracing is on when the ``tracing`` extra (aws-xray-sdk) is installed and Powertools would trace:
inside Lambda and not turned off with ``POWERTOOLS_TRACE_DISABLED``. Off, a step costs one
shared no-op context manager; aws_xray_sdk is never imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["Tracing"]

_NOOP: AbstractContextManager[None] = contextlib.nullcontext()


def _tracing_wanted() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    local_cli = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return not disabled and in_lambda and not local_cli and importlib.util.find_spec("aws_xray_sdk") is not None


class Tracing:
    """Opens one subsegment per step when on; decided once, at decoration time."""

    def __init__(self, service: str | None = None) -> None:
        self.enabled = _tracing_wanted()
        self._service = service
        self._tracer: Any = None

    def step(self, name: str, execution: str | None, state: str | None) -> AbstractContextManager[Any]:
        if not self.enabled:
            return _NOOP
        return self._subsegment(name, execution, state)

    @contextlib.contextmanager
    def _subsegment(self, name: str, execution: str | None, state: str | None) -> Iterator[Any]:
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self._service or os.environ.get("POWERTOOLS_SERVICE_NAME"))
        with self._tracer.provider.in_subsegment(f"## {name}") as subsegment:
            if execution:
                subsegment.put_annotation("execution", execution)
            if state:
                subsegment.put_annotation("state", state)
            yield subsegment
