"""What a long-running server keeps of closed executions: every description, histories within a budget.

Nothing that ran is forgotten while the server runs: a closed execution's description (status, dates,
error, cause, input and output, compressed) is kept, so DescribeExecution, ListExecutions and
StartExecution's name check answer for it as AWS would within its 90 days. What is bounded is the
history: the histories of the newest ``keep_histories`` closed executions are kept compressed, within
``history_budget_bytes`` in all; beyond either bound the oldest ones are dropped, and
GetExecutionHistory then answers a summary (the execution's start and end events) while
DescribeExecution says so in ``redriveStatusReason``.
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sfn_workers.local.api.models import ExecutionRecord, epoch

__all__ = ["DEFAULT_HISTORY_BUDGET_BYTES", "DEFAULT_KEEP_HISTORIES", "HISTORY_DROPPED", "Retention"]

DEFAULT_HISTORY_BUDGET_BYTES = 32 * 1024 * 1024
DEFAULT_KEEP_HISTORIES = 1000
#: DescribeExecution's ``redriveStatusReason`` once the history is summarised.
HISTORY_DROPPED = (
    "The local server keeps the histories of its newest closed executions only (see docs/local-endpoint.md, "
    "Retention): this one's was dropped; GetExecutionHistory answers its start and end events"
)


def _event_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON: {type(value).__name__}")


def pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, default=_event_json, separators=(",", ":")).encode(), 6)


def unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


class Retention:
    """The closed executions' stored parts (call under the backend's lock)."""

    def __init__(self, keep_histories: int, history_budget_bytes: int) -> None:
        self.keep_histories = keep_histories
        self.history_budget_bytes = history_budget_bytes
        self._with_history: OrderedDict[str, ExecutionRecord] = OrderedDict()  # oldest first
        self.history_bytes = 0
        self.closed = 0

    def close(self, run: ExecutionRecord, events: list[dict[str, Any]]) -> None:
        """Store a closing execution: its input/output packed, its history packed if it fits the budget."""
        run.packed_io = pack([run.input_text, run.output_text])  # texts: always serialisable
        run.input_text = run.output_text = None
        run.events = None
        self.closed += 1
        run.history_events = len(events)
        try:
            packed = pack(events)
        except (ValueError, TypeError, RecursionError):  # not serialisable: keep the summary only
            run.history_dropped = True
            return
        run.packed_history = packed
        self._with_history[run.arn] = run
        self.history_bytes += len(packed)
        self._enforce()

    def _enforce(self) -> None:
        while self._with_history and (
            len(self._with_history) > self.keep_histories or self.history_bytes > self.history_budget_bytes
        ):
            _arn, old = self._with_history.popitem(last=False)
            self.history_bytes -= len(old.packed_history or b"")
            old.packed_history = None
            old.history_dropped = True

    @property
    def histories(self) -> int:
        return len(self._with_history)

    @staticmethod
    def io(run: ExecutionRecord) -> tuple[str | None, str | None]:
        """(input, output) of an execution, running or closed."""
        if run.packed_io is None:
            return run.input_text, run.output_text
        found = unpack(run.packed_io)
        return found[0], found[1]

    @staticmethod
    def history(run: ExecutionRecord) -> list[dict[str, Any]]:
        """The events so far (timestamps as epoch seconds), or the summary once the history was dropped."""
        if run.packed_history is not None:
            events: list[dict[str, Any]] = unpack(run.packed_history)
            return events
        if run.history_dropped:
            return summary(run)
        return json.loads(json.dumps(list(run.events or []), default=_event_json))  # type: ignore[no-any-return]


_CLOSING = {
    "SUCCEEDED": ("ExecutionSucceeded", "executionSucceededEventDetails"),
    "FAILED": ("ExecutionFailed", "executionFailedEventDetails"),
    "TIMED_OUT": ("ExecutionTimedOut", "executionTimedOutEventDetails"),
    "ABORTED": ("ExecutionAborted", "executionAbortedEventDetails"),
}


def summary(run: ExecutionRecord) -> list[dict[str, Any]]:
    """The two events a dropped history still has: ExecutionStarted and the closing event."""
    input_text, output_text = Retention.io(run)
    started = {
        "timestamp": epoch(run.start),
        "type": "ExecutionStarted",
        "id": 1,
        "previousEventId": 0,
        "executionStartedEventDetails": {
            "input": input_text,
            "inputDetails": {"truncated": False},
            "roleArn": run.machine.role_arn,
        },
    }
    kind, key = _CLOSING.get(run.status, _CLOSING["ABORTED"])
    details: dict[str, Any] = {}
    if run.status == "SUCCEEDED":
        details = {"output": output_text, "outputDetails": {"truncated": False}}
    else:
        details = {k: v for k, v in (("error", run.error), ("cause", run.cause)) if v is not None}
    closing = {
        "timestamp": epoch(run.stop or run.start),
        "type": kind,
        "id": run.history_events or 2,
        "previousEventId": max(1, run.history_events - 1),
        key: details,
    }
    return [started, closing]
