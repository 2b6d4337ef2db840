"""What the local Step Functions backend keeps: state machine and execution records.

The records are plain data, read and changed under the backend's lock; an action module (see
:mod:`.backend`) reads them to answer, the backend's execution lifecycle writes them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfn_workers.local.asl import Definition, Execution

__all__ = ["STATUSES", "ExecutionRecord", "MachineRecord", "epoch", "now"]

#: Execution statuses of the API.
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")


def now() -> datetime:
    return datetime.now(UTC)


def epoch(value: datetime | None) -> float | None:
    """A timestamp as the JSON protocol carries it (epoch seconds)."""
    return None if value is None else value.timestamp()


@dataclass(eq=False)
class MachineRecord:
    """A state machine: its definition as given (text) and as the interpreter runs it (parsed)."""

    arn: str
    name: str
    type: str  # STANDARD or EXPRESS
    definition_text: str
    definition: Definition
    role_arn: str
    created: datetime
    logging: dict[str, Any]
    tracing: dict[str, Any]
    description: str = ""
    #: executions by ARN, oldest first
    runs: OrderedDict[str, ExecutionRecord] = field(default_factory=OrderedDict)

    @property
    def express(self) -> bool:
        return self.type == "EXPRESS"


@dataclass(eq=False)
class ExecutionRecord:
    """One execution: its description while it runs and after; its history live, then compressed.

    Once closed, ``input_text``/``output_text`` are kept compressed in ``packed_io`` and the history
    in ``packed_history`` (None once retention dropped it: ``history_events`` still counts it).
    """

    arn: str
    machine: MachineRecord
    name: str
    start: datetime
    seq: int
    input_text: str | None = None
    trace_header: str | None = None
    status: str = "RUNNING"
    aborted: bool = False  # stopped through the API or by shutdown
    stop: datetime | None = None
    output_text: str | None = None
    error: str | None = None
    cause: str | None = None
    execution: Execution | None = None  # the interpreter's execution while it runs
    events: list[dict[str, Any]] | None = field(default_factory=list)  # live history while running
    packed_io: bytes | None = None
    packed_history: bytes | None = None
    history_events: int = 0
    history_dropped: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def express(self) -> bool:
        return self.machine.express
