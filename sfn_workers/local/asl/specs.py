"""Typed, parsed states: what ``parse_definition`` builds once and the state modules run.

Each state type has its own frozen dataclass holding its fields already read and checked, so the
interpreter never looks a field up in the state's JSON at run time. ``query`` is the state's query
language object (query.py) and ``flow`` its data-flow fields. ``raw`` keeps the JSON as written
(for tools and messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .query import JSONATA, DataFlow, Field, QueryLanguage

__all__ = [
    "ABSENT",
    "Catcher",
    "ChoiceRule",
    "ChoiceSpec",
    "DistributedMapSpec",
    "FailSpec",
    "Machine",
    "MapSpec",
    "ParallelSpec",
    "PassSpec",
    "Retrier",
    "StateSpec",
    "SucceedSpec",
    "TaskSpec",
    "WaitSpec",
]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # a field that is not written (unlike one written as null)


@dataclass(frozen=True, slots=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: str = "NONE"


@dataclass(frozen=True, slots=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"
    assign: Field | None = None
    output: Field | None = None


@dataclass(frozen=True, slots=True)
class ChoiceRule:
    """One entry of Choices: ``test`` is a compiled rule (JSONPath) or the Condition (a Field or a literal)."""

    test: Any
    next: str
    assign: Field | None = None
    output: Field | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StateSpec:
    """What every state has."""

    name: str
    type: str
    raw: Mapping[str, Any]
    query: QueryLanguage
    next: str | None
    end: bool
    flow: DataFlow
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()

    @property
    def query_language(self) -> str:
        return self.query.name

    @property
    def jsonata(self) -> bool:
        return self.query is JSONATA

    def targets(self) -> list[tuple[str, str]]:
        """(field, state name) of every transition this state can make."""
        out = [("Next", self.next)] if self.next is not None else []
        return out + [(f"Catch[{i}].Next", c.next) for i, c in enumerate(self.catch)]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PassSpec(StateSpec):
    result: Any = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SucceedSpec(StateSpec):
    pass


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FailSpec(StateSpec):
    error: Field | None = None
    error_path: str | None = None
    cause: Field | None = None
    cause_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ChoiceSpec(StateSpec):
    choices: tuple[ChoiceRule, ...] = ()
    default: str | None = None

    def targets(self) -> list[tuple[str, str]]:
        out = [(f"Choices[{i}].Next", c.next) for i, c in enumerate(self.choices)]
        return out + ([("Default", self.default)] if self.default is not None else [])


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class WaitSpec(StateSpec):
    seconds: Field | None = None
    seconds_path: str | None = None
    timestamp: Field | None = None
    timestamp_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TaskSpec(StateSpec):
    resource: str = ""
    timeout: Field | None = None
    timeout_path: str | None = None
    heartbeat: Field | None = None
    heartbeat_path: str | None = None

    @property
    def waits_for_token(self) -> bool:
        # An activity's task is answered with its token too (by the worker that took it).
        return self.resource.endswith(".waitForTaskToken") or ":activity:" in self.resource


@dataclass(frozen=True, slots=True)
class Machine:
    """A StartAt + States graph: the whole definition, a Parallel branch or a Map's item processor."""

    start_at: str
    states: dict[str, StateSpec]
    query_language: str
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ParallelSpec(StateSpec):
    branches: tuple[Machine, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MapSpec(StateSpec):
    processor: Machine
    items: Field | None = None  # JSONata Items
    items_path: str = "$"
    item_selector: Field | None = None  # ItemSelector or the older Parameters
    max_concurrency: Field | None = None
    max_concurrency_path: str | None = None
    tolerated_count: Field | None = None
    tolerated_count_path: str | None = None
    tolerated_percentage: Field | None = None
    tolerated_percentage_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DistributedMapSpec(MapSpec):
    """A Map with ItemReader / ItemBatcher / ResultWriter (or Mode DISTRIBUTED): child executions."""

    reader: Mapping[str, Any] | None = None
    reader_arguments: Field | None = None
    max_items: Field | None = None
    max_items_path: str | None = None
    batcher: Mapping[str, Any] | None = None
    per_batch: Field | None = None
    per_batch_path: str | None = None
    bytes_per_batch: Field | None = None
    bytes_per_batch_path: str | None = None
    batch_input: Field | None = None
    writer_arguments: Field | None = None
