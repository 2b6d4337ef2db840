"""The run loop: an execution's history, its states one after another, Retry/Catch, stop and timeout.

What each state type does is in states/ (one module per type, working on the typed specs of
specs.py through the query language objects of query.py); this module only moves from state to
state. It is the :class:`~.frame.Engine` those modules use, so they never import it.

Threads: an execution runs on the caller's thread, which is also the first worker of each Map or
Parallel it reaches; Parallel adds a thread per further branch, Map adds workers (up to
MaxConcurrency, or 40 like AWS's inline Map) only while iterations wait or block (workers.py).
Every worker is registered with the clock so virtual time stays consistent (clock.py).
Values are never mutated in place: ResultPath copies only the spine it changes, so inputs, outputs
and history share structure safely.

Stopping: :meth:`Execution.stop` (StopExecution) and the execution's TimeoutSeconds set a flag that
the loop checks before each state, before each retry, before each Map iteration and during every
wait, so a stopped execution ends at its next step and frees its thread. (Work already inside an
integration call, e.g. a Lambda handler, finishes first: there is no safe way to interrupt it.)
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sfn_workers._limits import PAYLOAD_MAX_BYTES
from sfn_workers.local.identity import ACCOUNT_ID, arn

from .clock import Clock
from .definition import Definition
from .errors import StatesError
from .frame import Abort, Child, ExecutionResult, Scope, StateRun, error_output, iso, size
from .history import History
from .integrations import Integrations
from .jsonata_bounded import cancellable
from .query import dumps
from .specs import Catcher, Machine, Retrier, StateSpec
from .states import RUNNERS
from .tokens import TokenBroker, TokenTicket
from .workers import before_blocking

__all__ = ["MAX_PAYLOAD_BYTES", "Execution", "ExecutionResult"]

_log = logging.getLogger("sfn_workers.local")

MAX_PAYLOAD_BYTES = PAYLOAD_MAX_BYTES  # kept for callers of asl.MAX_PAYLOAD_BYTES
_NOT_CAUGHT_BY_ALL = frozenset(["States.Runtime", "States.DataLimitExceeded"])
_QUALIFIED = ("States.Runtime", "States.QueryEvaluationError")
T = TypeVar("T")


def _matches(names: tuple[str, ...], err: StatesError) -> bool:
    """Whether a Retrier's or Catcher's ErrorEquals names ``err`` (States.ALL / TaskFailed as AWS reads them)."""
    e = err.error
    if e == "States.Runtime":
        return False
    for n in names:
        if n == e or (n == "States.ALL" and e not in _NOT_CAUGHT_BY_ALL):
            return True
        if n == "States.TaskFailed" and e not in _NOT_CAUGHT_BY_ALL and e != "States.Timeout":
            return True
    return False


def _catcher(spec: StateSpec, err: StatesError) -> Catcher | None:
    return next((c for c in spec.catch if _matches(c.error_equals, err)), None)


def _qualify(err: StatesError, run: StateRun) -> None:
    """A runtime error's cause names the state and the event it entered at, as AWS words it."""
    if err.error in _QUALIFIED and not getattr(err, "qualified", False):
        prefix = (
            f"An error occurred while executing the state '{run.spec.name}' (entered at the event id "
            f"#{run.entered_id})."
        )
        err.cause = f"{prefix} {err.cause}" if err.cause else prefix
        err.qualified = True  # type: ignore[attr-defined]


class Execution:
    """One execution of a state machine (see interfaces.md for the contract)."""

    def __init__(
        self,
        definition: Definition,
        input: Any,
        *,
        integrations: Integrations,
        clock: Clock,
        tokens: TokenBroker,
        name: str | None = None,
        state_machine_name: str = "StateMachine",
        state_machine_arn: str | None = None,
        listener: Callable[[dict[str, Any]], None] | None = None,
        context: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        token_grace_seconds: float = 0.05,
    ) -> None:
        self.definition = definition
        self.input = input
        self.integrations = integrations
        self.clock = clock
        self.tokens = tokens
        self.name = name or str(uuid.uuid4())
        self.state_machine_name = state_machine_name
        self.state_machine_arn = state_machine_arn or arn("states", f"stateMachine:{state_machine_name}")
        self.execution_arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{self.name}"
        self.history = History(clock, listener, on_full=self._history_full)
        self.token_grace = token_grace_seconds if clock.virtual else 0.0
        self._rng = rng or random.Random()
        self._stop: tuple[str, str | None, str | None] | None = None
        self._deadline: datetime | None = None
        self._overrides = context or {}
        self._ctx: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        self._root = Scope(None)
        self._tickets: set[TokenTicket] = set()
        self._tickets_lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------------
    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        """Abort the execution (thread-safe): it ends at its next step and ``run`` returns ABORTED."""
        if self._stop is None:
            self._stop = ("ABORTED", error, cause)
        self._root.cancelled = True
        self.clock.wake()

    def _history_full(self, cause: str) -> None:
        """The history reached AWS's cap: the execution fails with States.Runtime at the next step."""
        if self._stop is None:
            self._stop = ("FAILED", "States.Runtime", cause)
        self._root.cancelled = True
        self.clock.wake()

    def run(self) -> ExecutionResult:
        """Run to the end and return the result; blocks the calling thread."""
        with self.clock.hold()():
            return self._run()

    # -- the Engine interface used by the state modules (frame.Engine) ----------------------------
    @property
    def deadline(self) -> datetime | None:
        return self._deadline

    def context_base(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._ctx

    def wake(self) -> None:
        self.clock.wake()

    def check(self, scope: Scope) -> None:
        if self._deadline is not None and self._stop is None and self.clock.now() >= self._deadline:
            self._stop = ("TIMED_OUT", "States.Timeout", None)
            self._root.cancelled = True
            self.clock.wake()
        if scope.is_cancelled():
            raise Abort()

    def sleep(self, seconds: float, scope: Scope) -> None:
        """Let ``seconds`` pass (virtual or real), cut short by stop, cancellation or the execution timeout."""
        if seconds <= 0:
            self.check(scope)
            return
        before_blocking()
        limit = seconds
        if self._deadline is not None:
            limit = min(limit, max(0.0, (self._deadline - self.clock.now()).total_seconds()))
        self.clock.wait(limit, scope.is_cancelled)
        self.check(scope)

    def track(self, ticket: TokenTicket, open: bool) -> None:
        with self._tickets_lock:
            if open:
                self._tickets.add(ticket)
            else:
                self._tickets.discard(ticket)

    def child(self, machine: Machine, input: Any, *, name: str, state_machine_name: str, arn: str) -> Child:
        definition = Definition(machine.raw or {}, machine, None, machine.query_language)
        return Execution(
            definition,
            input,
            integrations=self.integrations,
            clock=self.clock,
            tokens=self.tokens,
            name=name,
            state_machine_name=state_machine_name,
            state_machine_arn=arn,
        )

    def run_machine(self, machine: Machine, value: Any, scope: Scope, prev: int) -> tuple[Any, int]:
        name: str | None = machine.start_at
        text: str | None = None
        with cancellable(lambda: self.check(scope)):  # a stop also ends a running JSONata expression
            while name is not None:
                self.check(scope)  # a stopped execution ends here, before its next state
                name, value, text, prev = self._run_state(machine.states[name], value, text, scope, prev)
        return value, prev

    def with_retry(self, run: StateRun, attempt: Callable[[], T]) -> T:
        counts = [0] * len(run.spec.retry)
        while True:
            self.check(run.scope)  # no further attempt once stopped
            try:
                return attempt()
            except StatesError as err:
                _qualify(err, run)
                delay = self._retry_delay(run.spec.retry, counts, err)
                if delay is None:
                    raise
                self.sleep(delay, run.scope)
                run.retry_count += 1

    def backoff(self, r: Retrier, counts: list[int], i: int) -> float:
        """Delay before the next attempt of retrier ``i`` (and count the attempt)."""
        delay = r.interval_seconds * (r.backoff_rate ** counts[i])
        if r.max_delay_seconds is not None:
            delay = min(delay, r.max_delay_seconds)
        counts[i] += 1
        if r.jitter == "FULL":
            delay = self._rng.uniform(0, delay)
        return float(delay)

    # -- the loop ---------------------------------------------------------------------------------
    def _context_parts(self, start: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        ov = self._overrides
        ov_exec = ov.get("Execution", {}) if isinstance(ov.get("Execution"), Mapping) else {}
        ov_sm = ov.get("StateMachine", {}) if isinstance(ov.get("StateMachine"), Mapping) else {}
        execution = {
            "Id": ov_exec.get("Id", self.execution_arn),
            "Input": self.input,
            "Name": ov_exec.get("Name", self.name),
            "RoleArn": ov_exec.get("RoleArn", f"arn:aws:iam::{ACCOUNT_ID}:role/StepFunctionsRole"),
            "StartTime": iso(start),
            "RedriveCount": 0,
        }
        machine = {"Id": ov_sm.get("Id", self.state_machine_arn), "Name": ov_sm.get("Name", self.state_machine_name)}
        return execution, machine

    def _run(self) -> ExecutionResult:
        start = self.clock.now()
        self._ctx = self._context_parts(start)
        if self.definition.timeout_seconds:
            self._deadline = start + timedelta(seconds=self.definition.timeout_seconds)
        started = {
            "input": dumps(self.input),
            "inputDetails": {"truncated": False},
            "roleArn": self._ctx[0]["RoleArn"],
            "stateMachineArn": self.state_machine_arn,
        }
        self.history.add("ExecutionStarted", 0, started)
        status, output, error, cause = "SUCCEEDED", None, None, None
        try:
            # The execution input's size is StartExecution's business (the API layer checks it).
            # AWS records the first state's entry with previousEventId 0, not the ExecutionStarted id.
            output, prev = self.run_machine(self.definition.machine, self.input, self._root, 0)
            self.check(self._root)  # stopped while the last state ran: ABORTED, as on AWS
            self.history.add(
                "ExecutionSucceeded", prev, {"output": dumps(output), "outputDetails": {"truncated": False}}
            )
        except StatesError as err:
            status, error, cause = "FAILED", err.error, err.cause
            details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            self.history.add("ExecutionFailed", len(self.history.events), details)
        except Abort:
            assert self._stop is not None
            status, error, cause = self._stop
            kind = {"TIMED_OUT": "ExecutionTimedOut", "FAILED": "ExecutionFailed"}.get(status, "ExecutionAborted")
            details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            self.history.add(kind, len(self.history.events), details)
        except Exception as exc:  # a bug below us must still end the execution, visibly
            _log.exception("execution %s failed inside the interpreter", self.name)
            status, error, cause = "FAILED", "States.Runtime", f"Internal error: {type(exc).__name__}: {exc}"
            self.history.add("ExecutionFailed", len(self.history.events), {"error": error, "cause": cause})
        finally:
            with self._tickets_lock:
                tickets = list(self._tickets)
            for t in tickets:
                self.tokens.close(t)
        events, now = self.history.events, self.clock.now()
        return ExecutionResult(status, output, error, cause, events, self.name, self.execution_arn, start, now)

    def _run_state(
        self, spec: StateSpec, raw: Any, raw_text: str | None, scope: Scope, prev: int
    ) -> tuple[str | None, Any, str, int]:
        run = StateRun(self, spec, scope, self.clock.now(), prev)
        if raw_text is None:
            raw_text = run.text(raw)
        else:
            run.texts.append((raw, raw_text))
        entered = {"name": spec.name, "input": raw_text, "inputDetails": {"truncated": False}}
        run.entered_id = run.prev = self.history.add(spec.type + "StateEntered", prev, entered)
        try:
            nxt, out = RUNNERS[type(spec)](self, run, spec, raw)
        except StatesError as err:
            _qualify(err, run)
            return self._caught(run, err, raw)
        text = run.text(out)
        if size(text) > PAYLOAD_MAX_BYTES:
            limit_err = StatesError(
                "States.DataLimitExceeded",
                f"The state/task '{spec.name}' returned a result with a size exceeding the maximum number of bytes "
                "service limit.",
            )
            return self._caught(run, limit_err, raw)
        return self._exit(run, None if spec.end else nxt, out, text)

    def _caught(self, run: StateRun, err: StatesError, raw: Any) -> tuple[str | None, Any, str, int]:
        """Hand ``err`` to the state's first matching Catcher, or raise it (the machine fails)."""
        catcher = _catcher(run.spec, err)
        if catcher is None:
            raise err
        out = run.spec.query.catch(run, raw, error_output(err), catcher)
        text = dumps(out)
        if size(text) > PAYLOAD_MAX_BYTES:
            raise StatesError("States.DataLimitExceeded", "The error output exceeds the maximum number of bytes")
        return self._exit(run, catcher.next, out, text)

    def _exit(self, run: StateRun, nxt: str | None, out: Any, text: str) -> tuple[str | None, Any, str, int]:
        """The StateExited event (also after a caught error, as AWS records it)."""
        details: dict[str, Any] = {"name": run.spec.name, "output": text, "outputDetails": {"truncated": False}}
        if run.assigned is not None:
            details["assignedVariables"] = dict(run.assigned)
            details["assignedVariablesDetails"] = {"truncated": False}
        prev = self.history.add(run.spec.type + "StateExited", run.prev, details)
        return nxt, out, text, prev

    def _retry_delay(self, retriers: tuple[Retrier, ...], counts: list[int], err: StatesError) -> float | None:
        for i, r in enumerate(retriers):
            if _matches(r.error_equals, err):
                if counts[i] >= r.max_attempts:
                    return None
                return self.backoff(r, counts, i)
        return None
