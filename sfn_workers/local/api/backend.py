"""The local Step Functions backend: state machines, executions, their lifecycle, and the action registry.

This is the model half of the local API (moto's ``models.py``); the wire protocol is :mod:`.protocol`.
The backend keeps the records (:mod:`.models`) under one lock, runs each execution with the
interpreter on the :class:`~.pool.ExecutionPool`, and hands closed ones to :class:`~.retention.Retention`.

**Actions** are plain functions ``action(backend, request) -> response`` kept in a registry by name.
Each group of actions lives in its own module with a table ``ACTIONS = {"Name": function, ...}``
(``machines``, ``executions``); :mod:`.stepfunctions` lists the tables the server
serves. A module that needs state of its own (activities, tags...) keeps it in a
:meth:`Backend.component`, made once per backend.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sfn_workers._limits import PAYLOAD_MAX_BYTES
from sfn_workers.local.api.models import ExecutionRecord, MachineRecord, now
from sfn_workers.local.api.pool import ExecutionPool, QueueFull
from sfn_workers.local.api.protocol import ApiError, arn_parts, parse_document
from sfn_workers.local.api.retention import DEFAULT_HISTORY_BUDGET_BYTES, DEFAULT_KEEP_HISTORIES, Retention
from sfn_workers.local.identity import ACCOUNT_ID, REGION, arn

if TYPE_CHECKING:
    from sfn_workers.local.asl import Clock, Definition, Integrations, TokenBroker

__all__ = ["EXPRESS_MAX_SECONDS", "Action", "Backend", "IntegrationsFactory"]

_log = logging.getLogger("sfn_workers.local.serve")

#: ``action(backend, request) -> response``; raises :class:`ApiError` for an error answer.
Action = Callable[["Backend", dict[str, Any]], dict[str, Any]]
#: ``integrations(clock)``: the ``asl.Integrations`` one execution uses.
IntegrationsFactory = Callable[["Clock"], "Integrations"]
#: An Express execution's maximum duration (AWS: 5 minutes).
EXPRESS_MAX_SECONDS = 300

T = TypeVar("T")


def _utf8_size(text: str) -> int:
    return len(text) if len(text) * 4 <= PAYLOAD_MAX_BYTES else len(text.encode("utf-8"))


def _output_text(output: Any) -> tuple[str | None, tuple[str, str] | None]:
    """An execution's output as the API returns it, or the (error, cause) that fails the execution
    instead: over 256 KiB, or not JSON (NaN, nested too deep to serialise)."""
    if output is None:
        return None, None
    try:
        text = json.dumps(output, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        return None, ("States.Runtime", f"The execution's output is not valid JSON: {str(exc)[:200]}")
    if _utf8_size(text) > PAYLOAD_MAX_BYTES:
        return None, (
            "States.DataLimitExceeded",
            f"The state/task returned a result with a size exceeding {PAYLOAD_MAX_BYTES}",
        )
    return text, None


class Backend:
    """State machines and executions behind the local Step Functions API.

    Args:
        integrations: ``integrations(clock)`` returns the ``asl.Integrations`` one execution uses.
        tokens: the ``asl.TokenBroker`` every execution issues task tokens from.
        clock: ``clock()`` makes each execution's clock (default: real time, as on AWS).
        max_executions: executions running at once; more wait in a queue, RUNNING, until a slot frees.
        max_queued: executions waiting for a slot; beyond it StartExecution answers ExecutionLimitExceeded.
        keep_executions: closed executions whose full history is kept (older ones keep a summary).
        history_budget_bytes: compressed bytes of closed executions' histories kept.
    """

    def __init__(
        self,
        integrations: IntegrationsFactory,
        tokens: TokenBroker,
        *,
        clock: Callable[[], Clock] | None = None,
        max_executions: int = 64,
        max_queued: int = 1000,
        keep_executions: int = DEFAULT_KEEP_HISTORIES,
        history_budget_bytes: int = DEFAULT_HISTORY_BUDGET_BYTES,
        region: str = REGION,
        account: str = ACCOUNT_ID,
    ) -> None:
        from sfn_workers.local import asl

        self._asl = asl
        self._integrations = integrations
        self.tokens = tokens
        self._clock: Callable[[], Clock] = clock or asl.RealClock
        self.region = region
        self.account = account
        self.lock = threading.RLock()
        self.machines: OrderedDict[str, MachineRecord] = OrderedDict()  # by ARN, creation order
        self.runs: dict[str, ExecutionRecord] = {}  # by ARN
        self.retention = Retention(keep_executions, history_budget_bytes)
        self.pool = ExecutionPool(max_executions, max_queued)
        self._actions: dict[str, Action] = {}
        self._components: dict[type[Any], Any] = {}
        self._seq = 0
        self._running = 0
        self._released_at = (0, time.monotonic())  # (closed count, monotonic time) of the last memory release
        self._accepting = True
        self.mocks: Any = None  # a mock_config.ServeMocks when serve has --mock-config
        #: resolves a version or alias ARN to the record its executions run (set by api/versions)
        self.qualified: Callable[[str], MachineRecord | None] | None = None

    # -- the action registry ------------------------------------------------------------------------

    def add_actions(self, table: Mapping[str, Action]) -> None:
        """Serve each ``{action name: action(backend, request)}`` of ``table`` (a later one replaces)."""
        with self.lock:
            self._actions.update(table)

    def actions(self) -> Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """Every action, bound to this backend: ``{name: handler(request) -> response}`` (a live view:
        actions added later are served too)."""
        return _BoundActions(self)

    def call(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one action as the API would (raises :class:`ApiError`), without the protocol."""
        with self.lock:
            found = self._actions.get(action)
        if found is None:
            raise ApiError("UnknownOperationException", f"unknown operation {action[:100]!r}")
        return found(self, dict(request))

    def component(self, kind: Callable[[Backend], T]) -> T:
        """The one ``kind(backend)`` of this backend, made on first use (state an action module keeps)."""
        with self.lock:
            found = self._components.get(kind)  # type: ignore[call-overload]
            if found is None:
                found = self._components[kind] = kind(self)  # type: ignore[index]
            return found  # type: ignore[no-any-return]

    # -- state machines -----------------------------------------------------------------------------

    def machine_arn(self, name: str) -> str:
        return arn("states", f"stateMachine:{name}", region=self.region)

    def parse(self, text: str, *, express: bool = False) -> Definition:
        """The interpreter's definition of ``text``, or InvalidDefinition worded as AWS words it.

        An Express machine gets AWS's 5-minute limit as its ``TimeoutSeconds`` (or its own, if shorter).
        """
        try:
            document = parse_document(text)
        except ValueError as exc:
            raise ApiError(
                "InvalidDefinition", f"Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {exc}'"
            ) from None
        if express and isinstance(document, dict):
            given = document.get("TimeoutSeconds")
            if given is None or (type(given) is int and given > EXPRESS_MAX_SECONDS):
                document = {**document, "TimeoutSeconds": EXPRESS_MAX_SECONDS}
        try:
            return self._asl.parse_definition(document)
        except self._asl.DefinitionError as exc:
            raise ApiError(
                "InvalidDefinition", f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {exc}'"
            ) from None

    def machine(self, machine_arn: str) -> MachineRecord:
        """The state machine of an ARN (InvalidArn, StateMachineDoesNotExist)."""
        region, account, _kind, rest = arn_parts(machine_arn, ("stateMachine",))
        if ":" in rest and self.qualified is not None and (region, account) == (self.region, self.account):
            found = self.qualified(machine_arn)  # a version or an alias
            if found is not None:
                return found
        with self.lock:
            found = self.machines.get(machine_arn)
        if found is None or (region, account) != (self.region, self.account) or ":" in rest:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine_arn}'")
        return found

    # -- executions ---------------------------------------------------------------------------------

    def run(self, execution_arn: str) -> ExecutionRecord:
        """The execution of an ARN (InvalidArn, ExecutionDoesNotExist)."""
        region, account, _kind, rest = arn_parts(execution_arn, ("execution", "express"))
        with self.lock:
            found = self.runs.get(execution_arn)
        if found is None or (region, account) != (self.region, self.account) or ":" not in rest:
            raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{execution_arn}'")
        return found

    def start(
        self,
        machine: MachineRecord,
        name: str | None,
        input_text: str,
        value: Any,
        trace: str | None,
        *,
        test_case: str | None = None,
    ) -> ExecutionRecord:
        """Start an execution of ``machine`` (input already validated); an equal running one is returned.
        ``test_case``: run with that test case of the mock config (``stateMachineArn#TestCase``)."""
        with self.lock:
            if not self._accepting:
                raise ApiError("ServiceUnavailable", "The local endpoint is shutting down", 503)
            if machine.arn not in self.machines:
                raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine.arn}'")
            name = name or str(uuid.uuid4())
            if machine.express:
                run_arn = arn("states", f"express:{machine.name}:{name}:{uuid.uuid4()}", region=self.region)
            else:
                run_arn = arn("states", f"execution:{machine.name}:{name}", region=self.region)
                existing = self.runs.get(run_arn)
                if existing is not None:
                    if existing.status == "RUNNING" and existing.input_text == input_text:
                        return existing  # AWS: same name and input of a running execution is idempotent
                    raise ApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{run_arn}'")
            self._seq += 1
            clock = self._clock()  # the execution's dates are its clock's, as its history's are
            run = ExecutionRecord(arn=run_arn, machine=machine, name=name, start=clock.now(), seq=self._seq)
            run.input_text, run.trace_header = input_text, trace
            integrations = self._integrations(clock)
            if test_case is not None:
                integrations = self._mocked(integrations, machine, test_case)
            run.execution = self._asl.Execution(
                machine.definition,
                value,
                integrations=integrations,
                clock=clock,
                tokens=self.tokens,
                name=name,
                state_machine_name=machine.name,
                state_machine_arn=machine.arn,
                listener=_recorder(run),
                context={"Execution": {"Id": run_arn, "Name": name, "RoleArn": machine.role_arn}},
            )
            try:
                self.pool.submit(lambda: self._execute(run))
            except QueueFull:
                raise ApiError(
                    "ExecutionLimitExceeded",
                    f"Execution Limit Exceeded: {self.pool.size} executions are running and {self.pool.queue_limit} "
                    "are waiting for a slot (serve --max-executions / --max-queued)",
                ) from None
            self.runs[run_arn] = run
            machine.runs[run_arn] = run
            self._running += 1
        return run

    def integrations_for(self, clock: Clock) -> Any:
        """The ``asl.Integrations`` an execution on ``clock`` uses (TestState runs one state with them)."""
        return self._integrations(clock)

    def _mocked(self, integrations: Any, machine: MachineRecord, test_case: str) -> Any:
        if self.mocks is None:
            raise ApiError(
                "ValidationException",
                f"test case {test_case!r}: start sfn-workers serve with --mock-config FILE to run test cases",
            )
        try:
            return self.mocks.integrations(integrations, machine.name, machine.definition_text, test_case)
        except ValueError as exc:  # MockConfigError: no such state machine or test case in the config
            raise ApiError("ValidationException", str(exc)) from None

    def _execute(self, run: ExecutionRecord) -> None:
        execution = run.execution
        assert execution is not None
        try:
            result = execution.run()
            status, output, error, cause = result.status, result.output, result.error, result.cause
            events, stop = result.history, result.stop
        except BaseException as exc:  # an interpreter bug fails one execution, not the server
            _log.exception("serve: execution %s crashed", run.arn)
            status, output, error, cause = "FAILED", None, "States.Runtime", f"local runner error: {exc!r}"
            events, stop = list(run.events or []), now()
        output_text, problem = _output_text(output)
        if problem is not None:
            status, output_text, (error, cause) = "FAILED", None, problem
        release = False
        try:
            with self.lock:
                if not run.aborted:  # an aborted execution keeps the status, date, error and cause of its stop
                    run.status, run.output_text, run.error, run.cause = status, output_text, error, cause
                    run.stop = max(stop if isinstance(stop, datetime) else now(), run.start)
                run.execution = None
                self.retention.close(run, events)
                release = self._release_due()
        finally:  # whatever happened, the execution is closed and its slot counted free
            with self.lock:
                self._running -= 1
            run.done.set()
        if self.retention.closed % 500 == 0:
            self.tokens.forget_closed()  # bound the broker; late SendTask* for old tokens get InvalidToken
        if release:
            _release_memory()

    def _release_due(self) -> bool:
        # Idle after a burst (or a while since the last time): worth a full collection. Not after
        # every execution of a one-at-a-time client, which would pay a full collection each.
        closed, at = self._released_at
        due = self._running == 0 and (self.retention.closed - closed >= 20 or time.monotonic() - at >= 5.0)
        if due:
            self._released_at = (self.retention.closed, time.monotonic())
        return due

    def abort(self, run: ExecutionRecord, error: str | None, cause: str | None, *, status: str = "ABORTED") -> None:
        """Stop a running execution; like AWS, it is ABORTED (or ``status``) from now on, even while its
        thread winds down (an in-process handler cannot be interrupted; its result is then discarded)."""
        with self.lock:
            if run.status != "RUNNING":
                return
            run.status, run.error, run.cause = status, error, cause
            run.stop = max(now(), run.start)
            run.aborted = True
            execution = run.execution
        if execution is not None:
            execution.stop(error, cause)

    # -- lifecycle ----------------------------------------------------------------------------------

    def running(self) -> list[str]:
        """ARNs of the executions not yet closed."""
        with self.lock:
            return [run_arn for run_arn, run in self.runs.items() if run.status == "RUNNING"]

    def wait(self, execution_arn: str, timeout: float | None = None) -> bool:
        """Wait until an execution's thread has ended (its history complete); False on timeout."""
        return self.run(execution_arn).done.wait(timeout)

    def stats(self) -> dict[str, int]:
        """What the backend holds (for tests and the memory bound)."""
        with self.lock:
            return {
                "state_machines": len(self.machines),
                "executions": len(self.runs),
                "running": sum(1 for run in self.runs.values() if run.status == "RUNNING"),
                "closed": self.retention.closed,
                "histories": self.retention.histories,
                "history_bytes": self.retention.history_bytes,
                "threads": self.pool.threads,
                "queued": self.pool.queued,
            }

    def close(self, grace: float = 5.0) -> None:
        """Refuse new executions, abort the running ones, wait up to ``grace`` seconds for them to close."""
        with self.lock:
            self._accepting = False
            # Every execution whose thread is still going, including ones already stopped through the
            # API (ABORTED at once) whose in-process handler has not returned yet.
            runs = [run for run in self.runs.values() if not run.done.is_set()]
        for run in runs:
            self.abort(run, "States.Aborted", "the local Step Functions endpoint shut down")
        deadline = time.monotonic() + grace
        try:
            for run in runs:
                if not run.done.wait(max(0.0, deadline - time.monotonic())):
                    _log.warning("serve: execution %s did not stop within %.1f s", run.arn, grace)
        finally:
            self.pool.close()


class _BoundActions(Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]):
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getitem__(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        with self._backend.lock:
            action = self._backend._actions[name]
        backend = self._backend

        def handler(request: dict[str, Any]) -> dict[str, Any]:
            return action(backend, request)

        return handler

    def __iter__(self) -> Iterator[str]:
        with self._backend.lock:
            return iter(list(self._backend._actions))

    def __len__(self) -> int:
        return len(self._backend._actions)


def _recorder(run: ExecutionRecord) -> Callable[[dict[str, Any]], None]:
    def record(event: dict[str, Any]) -> None:
        events = run.events
        if events is not None:
            events.append(event)

    return record


def _release_memory() -> None:
    """When the last running execution closes: collect cycles and hand freed heap back to the OS.

    A burst of executions leaves garbage cycles (tracebacks, closures) that the generational collector
    may keep for a long time, and glibc keeps freed arenas mapped; both look like a leak from outside.
    """
    import gc

    gc.collect()
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
