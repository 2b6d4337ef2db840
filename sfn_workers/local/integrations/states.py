"""``arn:aws:states:::states:startExecution[.sync|.sync:2|.waitForTaskToken]``: nested executions.

The child runs on the local interpreter when its state machine is one the runner knows (the
template's state machines, or the runner's own definition), as AWS does it:

* request-response: the child starts in the background; the result is ``ExecutionArn`` and
  ``StartDate`` (epoch milliseconds);
* ``.sync``: the Task waits for the child; the result is DescribeExecution's answer with ``Input``
  and ``Output`` as JSON text (``.sync:2``: as JSON values); a child that does not succeed fails
  the Task with ``States.TaskFailed`` and that answer as the cause;
* ``.waitForTaskToken``: the child starts in the background and the Task waits for its token
  (``$$.Task.Token``, passed in ``Input``). On the virtual clock, the parent's time stands still
  while the child runs.

``Input`` is the child's input as written; AWS users pass ``"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$":
"$$.Execution.Id"`` in it to link the two executions, and the child sees that field unchanged.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sfn_workers.local.asl import Execution, TaskError, parse_definition
from sfn_workers.local.integrations.common import Call, release, runtime_error, sdk_metadata
from sfn_workers.local.token_backend import ApiError

__all__ = ["BackendMachines", "Machines", "NestedExecutions", "RunnerMachines"]


class Child(Protocol):
    """What :class:`NestedExecutions` needs of an execution (``asl.Execution`` is one)."""

    name: str
    execution_arn: str

    def run(self) -> Any: ...


class Machines(Protocol):
    """The state machines nested executions may start."""

    def execution(self, arn: str, input: Any, name: str) -> Child:
        """A new, not yet started execution; KeyError when no state machine has ``arn``."""
        ...

    def known(self) -> list[str]:
        """The ARNs of the state machines :meth:`execution` can start (for messages)."""
        ...


class RunnerMachines:
    """The state machines of a :class:`~sfn_workers.local.runner.LocalRunner`: its template's, or its own definition."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self._parsed: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def _definitions(self) -> dict[str, tuple[str, Mapping[str, Any]]]:
        template = self.runner.template
        if template is None:
            return {self.runner.arn: (self.runner.name, self.runner.document)}
        return {m.arn: (m.name, m.definition) for m in template.state_machines.values()}

    def known(self) -> list[str]:
        return sorted(self._definitions())

    def execution(self, arn: str, input: Any, name: str) -> Child:
        with self._lock:
            if arn not in self._parsed:
                machine_name, document = self._definitions()[arn]
                self._parsed[arn] = (machine_name, parse_definition(document))
            machine_name, definition = self._parsed[arn]
        clock = self.runner.clock()
        return Execution(
            definition,
            input,
            integrations=self.runner.integrations(clock),
            clock=clock,
            tokens=self.runner.tokens,
            name=name,
            state_machine_name=machine_name,
            state_machine_arn=arn,
        )


@dataclass(frozen=True)
class _Ended:
    """How an API execution ended, in the fields :class:`NestedExecutions` reads."""

    execution_arn: str
    name: str
    status: str
    output: Any
    error: str | None
    cause: str | None


class _ApiChild:
    """An execution started through the ``serve`` backend: listed and described like any other."""

    def __init__(self, record: Any, io: Callable[[Any], tuple[str | None, str | None]]) -> None:
        self.record = record
        self.io = io
        self.name: str = record.name
        self.execution_arn: str = record.arn

    def run(self) -> _Ended:
        self.record.done.wait()
        _input, text = self.io(self.record)
        output = json.loads(text) if text is not None else None
        return _Ended(self.record.arn, self.name, self.record.status, output, self.record.error, self.record.cause)


class BackendMachines:
    """The state machines of ``sfn-workers serve``'s backend: the child is a real API execution
    (ListExecutions and DescribeExecution show it), started when the Task starts it."""

    def __init__(self, backend: Any, io: Callable[[Any], tuple[str | None, str | None]]) -> None:
        """``io(record)``: an execution record's (input, output) text, packed or not (``Retention.io``)."""
        self.backend = backend
        self.io = io

    def known(self) -> list[str]:
        with self.backend.lock:
            return sorted(self.backend.machines)

    def execution(self, arn: str, input: Any, name: str) -> Child:
        with self.backend.lock:
            machine = self.backend.machines.get(arn)
        if machine is None:
            raise KeyError(arn)
        text = _text(input)
        try:
            record = self.backend.start(machine, name, text, json.loads(text), None)
        except ApiError as exc:  # ExecutionAlreadyExists, ExecutionLimitExceeded...
            raise TaskError(f"StepFunctions.{exc.code}Exception", exc.message) from None
        return _ApiChild(record, self.io)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _input_of(params: Mapping[str, Any]) -> Any:
    value = params.get("Input", {})
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


class NestedExecutions:
    """The ``states`` integration on the runner's state machines."""

    def __init__(self, machines: Machines) -> None:
        self.machines = machines
        self.children: list[threading.Thread] = []  # background children, for tests and shutdown

    def __call__(self, call: Call) -> Any:
        if call.action != "startExecution":
            raise runtime_error(f"{call.resource}: the local runner runs states:startExecution only")
        arn = call.parameters.get("StateMachineArn")
        if not isinstance(arn, str):
            raise runtime_error(f"{call.resource}: StateMachineArn must be a string")
        name = str(call.parameters.get("Name") or uuid.uuid4())
        child_input = _input_of(call.parameters)
        try:
            child = self.machines.execution(arn, child_input, name)
        except KeyError:
            known = ", ".join(self.machines.known()) or "none"
            raise TaskError(
                "StepFunctions.StateMachineDoesNotExistException",
                f"State Machine Does Not Exist: '{arn}' (the local runner knows: {known})",
            ) from None
        started = datetime.now(UTC)
        if call.pattern in (".sync", ".sync:2"):
            as_json = call.pattern == ".sync:2"
            return self._describe(child.run(), arn, child_input, started, as_json=as_json)
        held = call.hold() if (call.pattern == ".waitForTaskToken" and call.hold is not None) else None
        self._background(child, held)
        return {"ExecutionArn": child.execution_arn, "StartDate": _millis(started), **sdk_metadata({})}

    def start(self, arn: str, input: Any) -> str:
        """Start an execution of ``arn`` in the background (an EventBridge rule's target); its ARN."""
        child = self.machines.execution(arn, input, str(uuid.uuid4()))
        self._background(child, None)
        return child.execution_arn

    def _background(self, child: Child, held: Callable[[], Any] | None) -> None:
        def run() -> None:
            try:
                child.run()
            finally:
                if held is not None:
                    release(held)

        thread = threading.Thread(target=run, name=f"sfn-child:{child.name}", daemon=True)
        self.children = [t for t in self.children if t.is_alive()] + [thread]
        thread.start()

    @staticmethod
    def _describe(result: Any, arn: str, child_input: Any, started: datetime, *, as_json: bool) -> dict[str, Any]:
        """DescribeExecution's answer for a finished child, as the ``.sync`` patterns return it."""
        answer: dict[str, Any] = {
            "ExecutionArn": result.execution_arn,
            "Input": child_input if as_json else _text(child_input),
            "InputDetails": {"Included": True},
            "Name": result.name,
            "StartDate": _millis(started),
            "StateMachineArn": arn,
            "Status": result.status,
            "StopDate": _millis(max(started, datetime.now(UTC))),
        }
        if result.status == "SUCCEEDED":
            answer["Output"] = result.output if as_json else _text(result.output)
            answer["OutputDetails"] = {"Included": True}
            return answer
        if result.error is not None:
            answer["Error"] = result.error
        if result.cause is not None:
            answer["Cause"] = result.cause
        raise TaskError("States.TaskFailed", _text(answer))
