"""The Step Functions API, served locally: ``sfn-workers serve`` and :class:`LocalStepFunctions`.

:class:`LocalStepFunctions` is the service: state machines, executions and their histories, kept in
memory, each execution run by the interpreter (:class:`asl.Execution`) on a bounded pool of threads.
It answers the API actions as AWS does (AWS JSON 1.0 request and response shapes, the real error
codes and their wording where known), through the :class:`SfnEndpoint` HTTP server that also serves
SendTaskSuccess/Failure/Heartbeat over the same token broker. boto3 and the AWS CLI reach it with
``endpoint_url`` / ``--endpoint-url``; a function run by ``sam local invoke`` or the Lambda runtime
interface reaches it with ``AWS_ENDPOINT_URL_SFN``.

Retention (a server runs for hours): running executions are always kept; of the closed ones, the
newest ``keep_executions`` are kept, and their histories are stored compressed within
``history_budget_bytes``; beyond either bound the oldest closed executions are forgotten (their ARN
then answers ExecutionDoesNotExist and their name may be reused, as after AWS's 90 days).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import queue
import re
import signal
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from sfn_workers.local.sam import ACCOUNT, REGION
from sfn_workers.local.sfn_endpoint import ApiRequest
from sfn_workers.local.tokens import ApiError

__all__ = [
    "DEFAULT_PORT",
    "IO_LIMIT_BYTES",
    "LocalStepFunctions",
    "Server",
    "add_serve_parser",
    "serve",
    "serve_command",
    "start_server",
]

_log = logging.getLogger("sfn_workers.local.serve")

DEFAULT_PORT = 8083
#: Execution input and output, and SendTaskSuccess output: UTF-8 bytes of the JSON text.
IO_LIMIT_BYTES = 262_144
DEFINITION_LIMIT = 1_048_576
NAME_LIMIT = 80
ARN_LIMIT = 256
ERROR_LIMIT = 256
CAUSE_LIMIT = 32_768
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
#: Execution statuses of the API.
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")

# AWS: names may not contain whitespace, brackets, wildcards, these special characters or control characters.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>[A-Za-z]+):(?P<rest>.+)$"
)
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")

Clock = Any
Integrations = Any
IntegrationsFactory = Callable[[Any], Any]  # clock -> asl.Integrations for one execution


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _utf8_size(text: str) -> int:
    return len(text) if len(text) * 4 <= IO_LIMIT_BYTES else len(text.encode("utf-8"))


# -- records ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Machine:
    arn: str
    name: str
    type: str
    definition_text: str
    definition: Any  # asl.Definition
    role_arn: str
    created: datetime
    logging: dict[str, Any]
    tracing: dict[str, Any]
    description: str = ""
    runs: OrderedDict[str, _Run] = field(default_factory=OrderedDict)  # execution name -> run, oldest first


@dataclass(eq=False)
class _Run:
    arn: str
    machine: _Machine
    name: str
    input_text: str
    start: datetime
    seq: int
    trace_header: str | None = None
    status: str = "RUNNING"
    aborted: bool = False  # stopped through the API or by shutdown
    stop: datetime | None = None
    output_text: str | None = None
    error: str | None = None
    cause: str | None = None
    execution: Any = None  # asl.Execution while it runs
    events: list[dict[str, Any]] | None = field(default_factory=list)  # live history while running
    packed: bytes | None = None  # compressed JSON history once closed
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def express(self) -> bool:
        return self.machine.type == "EXPRESS"


def _event_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON: {type(value).__name__}")


# -- request validation ----------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or _BAD_NAME.search(name):
        raise ApiError("InvalidName", f"Invalid Name: '{name}'")


def _arn_parts(arn: str, kinds: tuple[str, ...]) -> tuple[str, str, str, str]:
    match = _ARN.match(arn)
    if match is None or match["kind"] not in kinds:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    return match["region"], match["account"], match["kind"], match["rest"]


class _Page:
    """Opaque, checked pagination tokens: which listing they belong to and where it continues."""

    @staticmethod
    def token(listing: str, position: int) -> str:
        raw = json.dumps({"l": listing, "p": position}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def position(listing: str, token: str | None) -> int | None:
        if token is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if isinstance(data, dict) and data.get("l") == listing and isinstance(data.get("p"), int):
                return int(data["p"])
        except (binascii.Error, ValueError):
            pass
        raise ApiError("InvalidToken", "Invalid Token: 'Invalid pagination token'")


# -- the executor ----------------------------------------------------------------------------------


class _Pool:
    """A bounded pool of daemon threads (a handler stuck in user code must not keep the process alive).

    Threads are started on demand, up to ``size``; jobs beyond that wait in the queue.
    """

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"sfn-execution-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._pending -= 1
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job's failure must not kill the worker
                _log.exception("serve: an execution job failed")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)

    @property
    def threads(self) -> int:
        with self._lock:
            return len(self._threads)


# -- the service -----------------------------------------------------------------------------------


class LocalStepFunctions:
    """State machines and executions behind the local Step Functions API (see the module doc).

    Args:
        integrations: ``integrations(clock)`` returns the ``asl.Integrations`` one execution uses
            (the runner's: template functions in-process, services on the embedded emulator).
        tokens: the ``asl.TokenBroker`` every execution issues task tokens from (and SendTask* answers).
        clock: ``clock()`` makes each execution's clock (default: real time, as on AWS).
        max_executions: executions running at once; more wait in a queue, RUNNING, until a slot frees.
        keep_executions: closed executions kept for Describe/List/GetExecutionHistory.
        history_budget_bytes: compressed bytes of closed executions' histories kept.
    """

    def __init__(
        self,
        integrations: IntegrationsFactory,
        tokens: Any,
        *,
        clock: Callable[[], Clock] | None = None,
        max_executions: int = 64,
        keep_executions: int = 1000,
        history_budget_bytes: int = 32 * 1024 * 1024,
        region: str = REGION,
        account: str = ACCOUNT,
    ) -> None:
        from sfn_workers.local import asl

        self._asl = asl
        self._integrations = integrations
        self.tokens = tokens
        self._clock = clock or asl.RealClock
        self.region = region
        self.account = account
        self.keep_executions = keep_executions
        self.history_budget_bytes = history_budget_bytes
        self._machines: OrderedDict[str, _Machine] = OrderedDict()  # by ARN, creation order
        self._runs: dict[str, _Run] = {}  # by ARN
        self._closed_runs: OrderedDict[str, _Run] = OrderedDict()  # oldest closed first
        self._history_bytes = 0
        self._seq = 0
        self._closed_count = 0
        self._running = 0
        self._released_at = (0, time.monotonic())  # (closed count, monotonic time) of the last memory release
        self._lock = threading.RLock()
        self._pool = _Pool(max_executions)
        self._accepting = True

    # -- wiring -------------------------------------------------------------------------------------

    def actions(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """The API actions this service answers, by name (SendTask* are the endpoint's own)."""
        return {
            "CreateStateMachine": self.create_state_machine,
            "DescribeStateMachine": self.describe_state_machine,
            "ListStateMachines": self.list_state_machines,
            "DeleteStateMachine": self.delete_state_machine,
            "StartExecution": self.start_execution,
            "StartSyncExecution": self.start_sync_execution,
            "DescribeExecution": self.describe_execution,
            "DescribeStateMachineForExecution": self.describe_state_machine_for_execution,
            "StopExecution": self.stop_execution,
            "ListExecutions": self.list_executions,
            "GetExecutionHistory": self.get_execution_history,
        }

    def register(self, endpoint: Any) -> None:
        """Serve every action on ``endpoint`` (an :class:`SfnEndpoint` over the same token broker)."""
        for action, handler in self.actions().items():
            endpoint.register(action, handler)

    # -- state machines -----------------------------------------------------------------------------

    def machine_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    def add_state_machine(
        self, name: str, definition: str | Mapping[str, Any], *, type: str = "STANDARD", role_arn: str | None = None
    ) -> str:
        """Create (or replace) a state machine directly, e.g. one of the template's; returns its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition, indent=2)
        parsed = self._parse(text)
        arn = self.machine_arn(name)
        with self._lock:
            self._machines[arn] = _Machine(
                arn=arn,
                name=name,
                type=type,
                definition_text=text,
                definition=parsed,
                role_arn=role_arn or f"arn:aws:iam::{self.account}:role/{name}-role",
                created=_now(),
                logging={"level": "OFF", "includeExecutionData": False},
                tracing={"enabled": False},
            )
        return arn

    def _parse(self, text: str) -> Any:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ApiError(
                "InvalidDefinition", f"Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {exc}'"
            ) from None
        try:
            return self._asl.parse_definition(document)
        except self._asl.DefinitionError as exc:
            raise ApiError(
                "InvalidDefinition", f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {exc}'"
            ) from None

    def create_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        name = r.text("name", required=True, low=1, high=NAME_LIMIT)
        text = r.text("definition", required=True, low=1, high=DEFINITION_LIMIT)
        role = r.text("roleArn", required=True, low=1, high=ARN_LIMIT)
        kind = r.choice("type", ("STANDARD", "EXPRESS")) or "STANDARD"
        logging_config = r.mapping("loggingConfiguration")
        tracing = r.mapping("tracingConfiguration")
        r.text("versionDescription", high=256)
        r.check()
        assert name is not None and text is not None and role is not None
        _check_name(name)
        if not _ROLE_ARN.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {role}'")
        parsed = self._parse(text)
        arn = self.machine_arn(name)
        with self._lock:
            existing = self._machines.get(arn)
            if existing is not None:
                if (existing.definition_text, existing.role_arn, existing.type) == (text, role, kind):
                    return {"stateMachineArn": arn, "creationDate": _epoch(existing.created)}
                raise ApiError("StateMachineAlreadyExists", f"State Machine Already Exists: '{arn}'")
            machine = _Machine(
                arn=arn,
                name=name,
                type=kind,
                definition_text=text,
                definition=parsed,
                role_arn=role,
                created=_now(),
                logging={"level": "OFF", "includeExecutionData": False, **(logging_config or {})},
                tracing={"enabled": False, **(tracing or {})},
            )
            self._machines[arn] = machine
        return {"stateMachineArn": arn, "creationDate": _epoch(machine.created)}

    def _machine(self, arn: str) -> _Machine:
        region, account, _kind, rest = _arn_parts(arn, ("stateMachine",))
        with self._lock:
            machine = self._machines.get(arn)
        if machine is None or (region, account) != (self.region, self.account) or ":" in rest:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
        return machine

    def _describe_machine(self, machine: _Machine) -> dict[str, Any]:
        return {
            "stateMachineArn": machine.arn,
            "name": machine.name,
            "status": "ACTIVE",
            "definition": machine.definition_text,
            "roleArn": machine.role_arn,
            "type": machine.type,
            "creationDate": _epoch(machine.created),
            "loggingConfiguration": machine.logging,
            "tracingConfiguration": machine.tracing,
            "description": machine.description,
        }

    def describe_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("stateMachineArn", required=True, low=1, high=ARN_LIMIT)
        r.check()
        assert arn is not None
        return self._describe_machine(self._machine(arn))

    def delete_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("stateMachineArn", required=True, low=1, high=ARN_LIMIT)
        r.check()
        assert arn is not None
        _arn_parts(arn, ("stateMachine",))
        with self._lock:
            machine = self._machines.pop(arn, None)
        if machine is not None:  # AWS stops the running executions of a deleted state machine
            for run in list(machine.runs.values()):
                self._abort(run, "States.Aborted", "the state machine was deleted")
        return {}

    def list_state_machines(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
        token = r.text("nextToken", low=1, high=1024)
        r.check()
        start = _Page.position("stateMachines", token) or 0
        with self._lock:
            machines = list(self._machines.values())
        page = machines[start : start + limit]
        answer: dict[str, Any] = {
            "stateMachines": [
                {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": _epoch(m.created)}
                for m in page
            ]
        }
        if start + limit < len(machines):
            answer["nextToken"] = _Page.token("stateMachines", start + limit)
        return answer

    # -- executions ---------------------------------------------------------------------------------

    def _start(self, request: dict[str, Any], *, sync: bool) -> _Run:
        r = ApiRequest(request)
        machine_arn = r.text("stateMachineArn", required=True, low=1, high=ARN_LIMIT)
        name = r.text("name", low=1, high=NAME_LIMIT)
        input_text = r.text("input", high=IO_LIMIT_BYTES, utf8=True)
        trace = r.text("traceHeader", high=256)
        r.check()
        assert machine_arn is not None
        if name is not None:
            _check_name(name)
        machine = self._machine(machine_arn)
        if sync and machine.type != "EXPRESS":
            raise ApiError(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine",
            )
        input_text = "{}" if input_text is None else input_text
        try:
            value = json.loads(input_text)
        except ValueError as exc:
            raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from None
        with self._lock:
            if not self._accepting:
                raise ApiError("ServiceUnavailable", "The local endpoint is shutting down", 503)
            if machine.arn not in self._machines:
                raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine.arn}'")
            express = machine.type == "EXPRESS"
            name = name or str(uuid.uuid4())
            if express:
                arn = f"arn:aws:states:{self.region}:{self.account}:express:{machine.name}:{name}:{uuid.uuid4()}"
            else:
                arn = f"arn:aws:states:{self.region}:{self.account}:execution:{machine.name}:{name}"
                existing = self._runs.get(arn)
                if existing is not None:
                    if existing.status == "RUNNING" and existing.input_text == input_text:
                        return existing  # AWS: same name and input of a running execution is idempotent
                    raise ApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
            self._seq += 1
            run = _Run(arn=arn, machine=machine, name=name, input_text=input_text, start=_now(), seq=self._seq)
            run.trace_header = trace
            clock = self._clock()
            run.execution = self._asl.Execution(
                machine.definition,
                value,
                integrations=self._integrations(clock),
                clock=clock,
                tokens=self.tokens,
                name=name,
                state_machine_name=machine.name,
                state_machine_arn=machine.arn,
                listener=self._listener(run),
                context={"Execution": {"Id": arn, "Name": name, "RoleArn": machine.role_arn}},
            )
            self._runs[arn] = run
            machine.runs[arn] = run
            self._running += 1
            self._pool.submit(lambda: self._execute(run))
        return run

    @staticmethod
    def _listener(run: _Run) -> Callable[[dict[str, Any]], None]:
        def record(event: dict[str, Any]) -> None:
            events = run.events
            if events is not None:
                events.append(event)

        return record

    def _execute(self, run: _Run) -> None:
        execution = run.execution
        try:
            result = execution.run()
            status, output, error, cause = result.status, result.output, result.error, result.cause
            events = result.history
            stop = result.stop
        except BaseException as exc:  # an interpreter bug fails one execution, not the server
            _log.exception("serve: execution %s crashed", run.arn)
            status, output, error, cause = "FAILED", None, "States.Runtime", f"local runner error: {exc!r}"
            events = list(run.events or [])
            stop = _now()
        output_text = None if output is None else json.dumps(output, separators=(",", ":"), ensure_ascii=False)
        if output_text is not None and _utf8_size(output_text) > IO_LIMIT_BYTES:
            status, output_text = "FAILED", None
            error, cause = "States.DataLimitExceeded", "The state/task returned a result with a size exceeding 262144"
        packed = zlib.compress(json.dumps(events, default=_event_json, separators=(",", ":")).encode(), 6)
        with self._lock:
            if not run.aborted:  # an aborted execution keeps the status, date, error and cause of its stop
                run.status, run.output_text, run.error, run.cause = status, output_text, error, cause
                run.stop = stop if isinstance(stop, datetime) else _now()
                run.stop = max(run.stop, run.start)
            run.packed, run.events, run.execution = packed, None, None
            self._closed_runs[run.arn] = run
            self._history_bytes += len(packed)
            self._closed_count += 1
            self._enforce_retention()
            self._running -= 1
            # Idle after a burst (or a while since the last time): worth a full collection. Not after
            # every execution of a one-at-a-time client, which would pay a full collection each.
            release = self._running == 0 and (
                self._closed_count - self._released_at[0] >= 20 or time.monotonic() - self._released_at[1] >= 5.0
            )
            if release:
                self._released_at = (self._closed_count, time.monotonic())
        run.done.set()
        if self._closed_count % 500 == 0:
            self.tokens.forget_closed()  # bound the broker; late SendTask* for old tokens get InvalidToken
        if release:
            _release_memory()

    def _enforce_retention(self) -> None:
        while self._closed_runs and (
            len(self._closed_runs) > self.keep_executions or self._history_bytes > self.history_budget_bytes
        ):
            _arn, old = self._closed_runs.popitem(last=False)
            self._history_bytes -= len(old.packed or b"")
            self._runs.pop(old.arn, None)
            old.machine.runs.pop(old.arn, None)

    def start_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        run = self._start(request, sync=False)
        return {"executionArn": run.arn, "startDate": _epoch(run.start)}

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        run = self._start(request, sync=True)
        run.done.wait()
        answer = self._describe_run(run)
        answer.pop("redriveCount", None)
        answer.pop("redriveStatus", None)
        duration = (run.stop or run.start) - run.start
        answer["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": max(100, int(duration.total_seconds() * 1000)),
        }
        return answer

    def _run(self, arn: str) -> _Run:
        region, account, _kind, rest = _arn_parts(arn, ("execution", "express"))
        with self._lock:
            run = self._runs.get(arn)
        if run is None or (region, account) != (self.region, self.account) or ":" not in rest:
            raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        return run

    def _describe_run(self, run: _Run) -> dict[str, Any]:
        with self._lock:
            answer: dict[str, Any] = {
                "executionArn": run.arn,
                "stateMachineArn": run.machine.arn,
                "name": run.name,
                "status": run.status,
                "startDate": _epoch(run.start),
                "input": run.input_text,
                "inputDetails": {"included": True},
            }
            if run.stop is not None:
                answer["stopDate"] = _epoch(run.stop)
            if run.output_text is not None:
                answer["output"] = run.output_text
                answer["outputDetails"] = {"included": True}
            if run.error is not None:
                answer["error"] = run.error
            if run.cause is not None:
                answer["cause"] = run.cause
            if run.trace_header is not None:
                answer["traceHeader"] = run.trace_header
            answer["redriveCount"] = 0
            answer["redriveStatus"] = "NOT_REDRIVABLE"
        return answer

    def describe_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("executionArn", required=True, low=1, high=ARN_LIMIT)
        r.check()
        assert arn is not None
        return self._describe_run(self._run(arn))

    def describe_state_machine_for_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("executionArn", required=True, low=1, high=ARN_LIMIT)
        r.check()
        assert arn is not None
        machine = self._run(arn).machine
        answer = self._describe_machine(machine)
        for key in ("status", "type", "creationDate", "description"):
            answer.pop(key, None)
        answer["updateDate"] = _epoch(machine.created)
        return answer

    def stop_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("executionArn", required=True, low=1, high=ARN_LIMIT)
        error = r.text("error", high=ERROR_LIMIT)
        cause = r.text("cause", high=CAUSE_LIMIT)
        r.check()
        assert arn is not None
        run = self._run(arn)
        self._abort(run, error, cause)
        run.done.wait(2.0)  # usually enough for the history to end with ExecutionAborted
        return {"stopDate": _epoch(run.stop or _now())}

    def _abort(self, run: _Run, error: str | None, cause: str | None) -> None:
        """Stop a running execution; like AWS, it is ABORTED from now on, even while its thread winds down
        (an in-process handler cannot be interrupted; its result is then discarded)."""
        with self._lock:
            if run.status != "RUNNING":
                return
            run.status, run.error, run.cause = "ABORTED", error, cause
            run.stop = max(_now(), run.start)
            run.aborted = True
            execution = run.execution
        if execution is not None:
            execution.stop(error, cause)

    def list_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        machine_arn = r.text("stateMachineArn", low=1, high=ARN_LIMIT)
        status = r.choice("statusFilter", STATUSES)
        limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
        token = r.text("nextToken", low=1, high=3096)
        r.text("mapRunArn", low=1, high=2000)
        r.check()
        if machine_arn is None:
            raise ApiError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN")
        machine = self._machine(machine_arn)
        listing = f"executions:{machine.arn}:{status or ''}"
        before = _Page.position(listing, token)
        with self._lock:
            runs = [
                run
                for run in reversed(machine.runs.values())
                if (before is None or run.seq < before) and (status is None or run.status == status)
            ]
        page = runs[:limit]
        items = []
        for run in page:
            item: dict[str, Any] = {
                "executionArn": run.arn,
                "stateMachineArn": machine.arn,
                "name": run.name,
                "status": run.status,
                "startDate": _epoch(run.start),
            }
            if run.stop is not None:
                item["stopDate"] = _epoch(run.stop)
            items.append(item)
        answer: dict[str, Any] = {"executions": items}
        if len(runs) > limit:
            answer["nextToken"] = _Page.token(listing, page[-1].seq)
        return answer

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The events of an execution so far (timestamps as epoch seconds)."""
        run = self._run(arn)
        with self._lock:
            packed, live = run.packed, list(run.events or [])
        if packed is not None:
            events: list[dict[str, Any]] = json.loads(zlib.decompress(packed))
            return events
        return json.loads(json.dumps(live, default=_event_json))  # type: ignore[no-any-return]

    def get_execution_history(self, request: dict[str, Any]) -> dict[str, Any]:
        r = ApiRequest(request)
        arn = r.text("executionArn", required=True, low=1, high=ARN_LIMIT)
        limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
        reverse = bool(r.flag("reverseOrder"))
        include_data = r.flag("includeExecutionData")
        token = r.text("nextToken", low=1, high=3096)
        r.check()
        assert arn is not None
        listing = f"history:{arn}:{int(reverse)}"
        start = _Page.position(listing, token) or 0
        events = self.history(arn)
        if reverse:
            events.reverse()
        page = events[start : start + limit]
        if include_data is False:
            page = [_without_data(event) for event in page]
        answer: dict[str, Any] = {"events": page}
        if start + limit < len(events):
            answer["nextToken"] = _Page.token(listing, start + limit)
        return answer

    # -- lifecycle ----------------------------------------------------------------------------------

    def running(self) -> list[str]:
        """ARNs of the executions not yet closed."""
        with self._lock:
            return [arn for arn, run in self._runs.items() if run.status == "RUNNING"]

    def stats(self) -> dict[str, int]:
        """What the service holds (for tests and the memory bound): executions, history bytes, threads."""
        with self._lock:
            return {
                "state_machines": len(self._machines),
                "executions": len(self._runs),
                "running": sum(1 for run in self._runs.values() if run.status == "RUNNING"),
                "closed": len(self._closed_runs),
                "history_bytes": self._history_bytes,
                "threads": self._pool.threads,
            }

    def close(self, grace: float = 5.0) -> None:
        """Refuse new executions, abort the running ones, wait up to ``grace`` seconds for them to close."""
        with self._lock:
            self._accepting = False
            # Every execution whose thread is still going, including ones already stopped through the
            # API (ABORTED at once) whose in-process handler has not returned yet.
            runs = [run for run in self._runs.values() if not run.done.is_set()]
        for run in runs:
            self._abort(run, "States.Aborted", "the local Step Functions endpoint shut down")
        deadline = threading.Event()
        timer = threading.Timer(grace, deadline.set)
        timer.daemon = True
        timer.start()
        try:
            for run in runs:
                while not run.done.wait(0.05):
                    if deadline.is_set():
                        _log.warning("serve: execution %s did not stop within %.1f s", run.arn, grace)
                        break
        finally:
            timer.cancel()
            self._pool.close()


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


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("input", "output", "parameters", "inputDetails")}
        out[key] = value
    return out


# -- sfn-workers serve -----------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``serve``: the service, its HTTP endpoint and the runner behind them."""

    service: LocalStepFunctions
    endpoint: Any
    runner: Any

    @property
    def url(self) -> str:
        return str(self.endpoint.url)

    def close(self, grace: float = 5.0) -> None:
        """Graceful shutdown: stop accepting requests, abort executions, stop the runner's emulator use."""
        self.service.close(grace)
        self.endpoint.stop(grace=min(grace, 2.0))
        self.runner.close()


def start_server(
    template: str | Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    virtual_time: bool = False,
    max_executions: int = 64,
    keep_executions: int = 1000,
    parameters: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
) -> Server:
    """Start the local Step Functions API on ``host:port`` (0: any free port) and return it.

    ``template``: a SAM template whose functions run in-process and whose state machines are created
    at start (None: only state machines created through the API, running against the emulator).
    """
    from sfn_workers.local import asl
    from sfn_workers.local.runner import LocalRunner
    from sfn_workers.local.sfn_endpoint import SfnEndpoint

    if template is not None:
        from sfn_workers.local.sam import load_template

        loaded = load_template(Path(template), parameters=parameters)
        first = next(iter(loaded.state_machines.values()), None)
        source: Any = Path(template) if first is not None else _NOOP_DEFINITION
        runner = LocalRunner(
            source,
            state_machine=first.name if first is not None else None,
            parameters=parameters,
            endpoint_url=endpoint_url,
            real_time=not virtual_time,
        )
        machines = list(loaded.state_machines.values())
    else:
        runner = LocalRunner(_NOOP_DEFINITION, endpoint_url=endpoint_url, real_time=not virtual_time)
        machines = []
    runner.open()
    try:
        service = LocalStepFunctions(
            runner.integrations,
            runner.tokens,
            clock=asl.VirtualClock if virtual_time else asl.RealClock,
            max_executions=max_executions,
            keep_executions=keep_executions,
        )
        for machine in machines:
            service.add_state_machine(machine.name, machine.definition, type=machine.type)
        endpoint = SfnEndpoint(runner.tokens, host=host, port=port, journal=False)
        service.register(endpoint)
        endpoint.start()
    except BaseException:
        runner.close()
        raise
    # In-process handlers report their task tokens to this endpoint (their clients are created lazily).
    import os

    os.environ["AWS_ENDPOINT_URL_SFN"] = str(endpoint.url)
    return Server(service, endpoint, runner)


_NOOP_DEFINITION = {"StartAt": "Noop", "States": {"Noop": {"Type": "Pass", "End": True}}}


def serve(
    template: str | Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    virtual_time: bool = False,
    max_executions: int = 64,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Run the endpoint until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully; exit code."""
    stop = stop or threading.Event()
    server = start_server(template, port=port, host=host, virtual_time=virtual_time, max_executions=max_executions)
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        for line in _banner(server):
            out(line)
        while not stop.wait(0.5):
            pass
        out("sfn-workers serve: shutting down (aborting running executions)")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
    out("sfn-workers serve: stopped")
    return 0


def _banner(server: Server) -> Iterator[str]:
    yield f"sfn-workers serve: Step Functions API on {server.url}"
    for item in server.service.list_state_machines({})["stateMachines"]:
        yield f"  state machine {item['name']}: {item['stateMachineArn']}"
    yield f"  export AWS_ENDPOINT_URL_SFN={server.url}   # boto3, the AWS CLI, sam local invoke"


def add_serve_parser(subparsers: Any) -> None:
    """Add ``sfn-workers serve`` to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the Step Functions API locally (boto3 / AWS CLI with --endpoint-url)",
        description="A local Step Functions API endpoint: the template's state machines are created at start, "
        "executions run in-process against the embedded AWS emulator.",
    )
    parser.add_argument("--template", "-t", default=None, help="SAM template (default: template.yaml if present)")
    parser.add_argument("--port", "-p", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        help="Wait states and retry intervals take no real time (task-token waits then time out at once)",
    )
    parser.add_argument("--max-executions", type=int, default=64, help="executions running at once (default 64)")
    parser.set_defaults(command_function=serve_command)


def serve_command(args: Any) -> int:
    """The ``serve`` subcommand: exit 0 after a graceful shutdown, 2 on bad usage."""
    import sys

    from sfn_workers.local.sam import TemplateError

    template = args.template
    if template is None and Path("template.yaml").is_file():
        template = "template.yaml"
    if template is not None and not Path(template).is_file():
        print(f"sfn-workers serve: template not found: {template}", file=sys.stderr)
        return 2
    try:
        return serve(
            template,
            port=args.port,
            host=args.host,
            virtual_time=args.virtual_time,
            max_executions=args.max_executions,
            out=lambda line: print(line, flush=True),
        )
    except TemplateError as exc:
        print(f"sfn-workers serve: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:  # a state machine of the template is not valid ASL
        print(f"sfn-workers serve: {template}: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sfn-workers serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
