"""What a running state sees: its :class:`StateRun`, its variable :class:`Scope`, and the :class:`Engine`.

The state modules (states/) and Distributed Map work only through the :class:`Engine` protocol,
the public face of the run loop (interpreter.py): history, clock, integrations, task tokens,
running a nested machine, sleeping, retrying, stopping. They never import the run loop, and the run
loop imports them; so imports go one way: query/specs -> frame -> states -> interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sfn_workers._limits import PAYLOAD_MAX_BYTES

from .clock import Clock
from .errors import StatesError
from .history import History
from .integrations import Integrations
from .paths import PathError
from .query import dumps
from .specs import Machine, StateSpec
from .tokens import TokenBroker, TokenTicket

__all__ = [
    "Abort",
    "Child",
    "Engine",
    "ExecutionResult",
    "Scope",
    "StateRun",
    "error_output",
    "iso",
    "size",
]

T = TypeVar("T")


def size(text: str) -> int:
    """UTF-8 bytes of ``text`` (counted only when the characters alone could exceed the limit)."""
    n = len(text)
    return n if n * 4 <= PAYLOAD_MAX_BYTES else len(text.encode("utf-8"))


_last_iso: tuple[datetime, str] | None = None


def iso(t: datetime) -> str:
    """AWS's timestamp text (milliseconds, ``Z``); the last one is remembered (events come in bursts)."""
    global _last_iso
    last = _last_iso
    if last is not None and last[0] == t:
        return last[1]
    text = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    _last_iso = (t, text)
    return text


def error_output(err: StatesError) -> dict[str, Any]:
    """``{"Error", "Cause"}`` as a Catcher or a failed Map iteration sees it."""
    out: dict[str, Any] = {}
    if err.error is not None:
        out["Error"] = err.error
    if err.cause is not None:
        out["Cause"] = err.cause
    return out


@dataclass
class ExecutionResult:
    """How an execution ended, with its history (AWS event types, timestamps from the clock)."""

    status: str
    output: Any  # the JSON output (None unless SUCCEEDED); Any, so tests index it without narrowing
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    name: str
    execution_arn: str
    start: datetime
    stop: datetime


class Abort(Exception):
    """Ends a branch without a catchable error: execution stopped/timed out, or a sibling failed."""


class Scope:
    """Variables and cancellation of one execution, Parallel branch or Map iteration."""

    __slots__ = ("cancelled", "parent", "vars")

    def __init__(self, parent: Scope | None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.cancelled = False

    def lookup(self, name: str) -> Any:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
        raise PathError(f"The variable '${name}' is not defined")

    def visible(self) -> dict[str, Any]:
        chain = []
        s: Scope | None = self
        while s is not None:
            chain.append(s.vars)
            s = s.parent
        out: dict[str, Any] = {}
        for d in reversed(chain):
            out.update(d)
        return out

    def is_cancelled(self) -> bool:
        s: Scope | None = self
        while s is not None:
            if s.cancelled:
                return True
            s = s.parent
        return False


class Child(Protocol):
    """A child execution (Distributed Map): run it, or stop it from another thread."""

    def run(self) -> ExecutionResult: ...

    def stop(self, error: str | None = None, cause: str | None = None) -> None: ...


class Engine(Protocol):
    """The run loop as the state modules use it (implemented by ``interpreter.Execution``)."""

    clock: Clock
    history: History
    integrations: Integrations
    tokens: TokenBroker
    state_machine_name: str
    state_machine_arn: str
    token_grace: float  # real seconds a token waiter keeps virtual time still (clock.py)

    @property
    def deadline(self) -> datetime | None: ...

    def context_base(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Execution and StateMachine parts of the context object."""
        ...

    def check(self, scope: Scope) -> None:
        """Raise :class:`Abort` if the execution stopped or timed out, or ``scope`` was cancelled."""
        ...

    def sleep(self, seconds: float, scope: Scope) -> None: ...

    def wake(self) -> None: ...

    def run_machine(self, machine: Machine, value: Any, scope: Scope, prev: int) -> tuple[Any, int]:
        """Run a nested machine (a branch, an iteration) to its end: (output, last event id)."""
        ...

    def with_retry(self, run: StateRun, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` again as the state's Retry says, sleeping between attempts."""
        ...

    def track(self, ticket: TokenTicket, open: bool) -> None:
        """Remember (or forget) a task token the execution must close if it ends first."""
        ...

    def child(self, machine: Machine, input: Any, *, name: str, state_machine_name: str, arn: str) -> Child:
        """A new execution of ``machine`` sharing this one's clock, integrations and tokens."""
        ...


class StateRun:
    """One state's run: the pieces of its context object, its scope, and its event chain (``prev``)."""

    __slots__ = (
        "assigned",
        "engine",
        "entered",
        "entered_id",
        "map_item",
        "prev",
        "retry_count",
        "scope",
        "spec",
        "texts",
        "token",
    )

    def __init__(
        self,
        engine: Engine,
        spec: StateSpec,
        scope: Scope,
        entered: datetime,
        prev: int,
        map_item: tuple[int, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.spec = spec
        self.scope = scope
        self.entered = entered
        self.entered_id = prev
        self.prev = prev
        self.retry_count = 0
        self.token: str | None = None
        self.map_item = map_item
        self.texts: list[tuple[Any, str]] = []  # JSON text already made, by identity
        self.assigned: dict[str, str] | None = None  # variables assigned here, as JSON text (StateExited)

    @property
    def state_name(self) -> str:
        return self.spec.name

    def for_item(self, index: int, value: Any) -> StateRun:
        """The same run as a Map item's ItemSelector sees it (``$$.Map.Item``)."""
        run = StateRun(self.engine, self.spec, self.scope, self.entered, self.prev, (index, value))
        run.entered_id = self.entered_id
        return run

    def text(self, value: Any) -> str:
        """``value`` as JSON text, serialised once per state however many events show it."""
        for v, t in self.texts:
            if v is value:
                return t
        t = dumps(value)
        self.texts.append((value, t))
        return t

    def context(self) -> dict[str, Any]:
        execution, machine = self.engine.context_base()
        ctx: dict[str, Any] = {
            "Execution": execution,
            "State": {"EnteredTime": iso(self.entered), "Name": self.spec.name, "RetryCount": self.retry_count},
            "StateMachine": machine,
        }
        if self.token is not None:
            ctx["Task"] = {"Token": self.token}
        if self.map_item is not None:
            ctx["Map"] = {"Item": {"Index": self.map_item[0], "Value": self.map_item[1]}}
        return ctx

    def lookup(self, name: str) -> Any:
        return self.scope.lookup(name)

    def variables(self) -> dict[str, Any]:
        return self.scope.visible()

    def now_millis(self) -> int:
        return int(self.engine.clock.now().timestamp() * 1000)

    def store(self, assigned: Mapping[str, Any] | None) -> None:
        """Make Assign's values visible (after the state's output is computed, as AWS orders it)."""
        if not assigned:
            return
        texts = {k: dumps(v) for k, v in assigned.items()}
        if sum(size(t) for t in texts.values()) > PAYLOAD_MAX_BYTES:
            raise StatesError(
                "States.DataLimitExceeded",
                f"The state '{self.spec.name}' assigned variables whose combined size exceeds the maximum number "
                "of bytes service limit.",
            )
        self.scope.vars.update(assigned)
        self.assigned = {**(self.assigned or {}), **texts}
