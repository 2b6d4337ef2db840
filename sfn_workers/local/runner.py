"""Run a state machine locally: the template's handlers in-process, AWS services on the embedded emulator.

For pytest::

    from sfn_workers.local import run_execution

    def test_happy_path():
        result = run_execution("template.yaml", {"orderId": "o-1", "items": [...]})
        assert result.status == "SUCCEEDED", result.cause
        assert result.output["status"] == "COMPLETE"

``run_execution`` starts from a clean emulator each time (buckets, tables and queues of the template,
empty). For many executions against one set-up, open a :class:`LocalRunner` and call
:meth:`LocalRunner.run` (or :meth:`LocalRunner.start` to act while it runs, e.g. to answer a
task token).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from sfn_workers.local.emulator import Emulator
from sfn_workers.local.lambdas import Handler, LocalFunction, PythonFunction, callable_function
from sfn_workers.local.mock_config import MockConfig, MockConfigError, MockedIntegrations, task_resources
from sfn_workers.local.sam import (
    ACCOUNT,
    REGION,
    StateMachine,
    Template,
    TemplateError,
    UnknownResourceError,
    function_name_of,
    is_template,
    lambda_resources,
    load_template,
    read_document,
)
from sfn_workers.local.services import Services

__all__ = ["LocalRunner", "RunningExecution", "run_execution"]

Listener = Callable[[dict[str, Any]], None]
Source = str | Path | Mapping[str, Any]


def _read_source(
    source: Source, state_machine: str | None = None, parameters: Mapping[str, Any] | None = None
) -> tuple[Template | None, StateMachine | None, Mapping[str, Any], str]:
    """(template, its state machine, ASL definition, where it came from) for any accepted source;
    template and state machine are None for a bare definition."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"the definition is not valid JSON: {exc}") from exc
    if isinstance(source, Mapping):
        if not is_template(source):
            return None, None, source, "the definition"
        template = load_template(source, parameters=parameters)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {path}")
        document = read_document(path)
        if not is_template(document):
            if not isinstance(document, Mapping):
                raise TemplateError(f"{path} is neither a SAM template nor a state machine definition")
            return None, None, document, str(path)
        template = load_template(path, parameters=parameters)
    machine = template.state_machine(state_machine)
    return template, machine, machine.definition, machine.source


class LocalRunner:
    """A state machine ready to run many executions: handlers imported, emulator provisioned.

    Args:
        source: a SAM template (path or parsed), or an ASL definition (path, JSON text or mapping).
        state_machine: which state machine of the template (logical id or name); needed only when
            the template has several.
        handlers: ``{function name or logical id: handler(event, context)}`` to use instead of the
            template's function (or, without a template, the functions a definition calls).
        real_time: Wait states and retry intervals really wait (default: a virtual clock).
        parameters: template parameter overrides.
        endpoint_url: an AWS emulator to use instead of the embedded moto (its resources are then
            created but never reset).
        reset: start from an empty emulator (default True).
        transport: how boto3's calls (the handlers', the service integrations') reach the embedded
            emulator: ``"in-process"`` (default: answered in this process, no sockets) or ``"http"``
            (over its real HTTP port, as another process would reach it).
        mock_config: a mock config in AWS Step Functions Local's format (path, parsed document or
            :class:`~sfn_workers.local.mock_config.MockConfig`).
        test_case: the test case of ``mock_config`` whose mocked responses this state machine's
            Task states give instead of calling their integrations.
    """

    def __init__(
        self,
        source: Source,
        *,
        state_machine: str | None = None,
        handlers: Mapping[str, Handler] | None = None,
        real_time: bool = False,
        parameters: Mapping[str, Any] | None = None,
        endpoint_url: str | None = None,
        reset: bool = True,
        transport: str = "in-process",
        mock_config: str | Path | Mapping[str, Any] | MockConfig | None = None,
        test_case: str | None = None,
    ) -> None:
        from sfn_workers.local import asl

        self.template, machine, document, where = _read_source(source, state_machine, parameters)
        self.real_time = real_time
        self.document = document
        self.source = where
        if machine is not None:
            self.name, self.arn = machine.name, machine.arn
        else:
            self.name = "StateMachine"
            self.arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.name}"
        self.definition = asl.parse_definition(document)
        self.test_case = _test_case(mock_config, test_case, self.name, bare=self.template is None)
        self.functions: dict[str, LocalFunction] = {}
        self._resolved: dict[str, LocalFunction | None] = {}  # reference -> function (cache)
        if self.template is not None:
            for logical_id, fn in self.template.functions.items():
                self.functions[logical_id] = PythonFunction(fn)
        for name, handler in (handlers or {}).items():
            existing = self.function_for(name)
            if isinstance(existing, PythonFunction):
                self.functions[existing.function.logical_id] = PythonFunction(existing.function, handler=handler)
            else:
                self.functions[name] = callable_function(name, handler)
            self._resolved.clear()
        self._check_resources()
        self.emulator = Emulator(endpoint_url=endpoint_url, transport=transport)
        self.tokens = asl.TokenBroker()
        self.delivery_errors: list[BaseException] = []
        self._opened = False
        self._lock = threading.Lock()
        self._reset = reset
        self.services = Services(self.emulator.url)
        self.services.connect(self)

    # -- set-up ------------------------------------------------------------------------------------

    def function_for(self, reference: str) -> LocalFunction | None:
        """The local function a Resource ARN, FunctionName or name refers to."""
        found = self._resolved.get(reference)
        if found is None:
            found = self._resolved[reference] = self._find_function(reference)
        return found

    def _find_function(self, reference: str) -> LocalFunction | None:
        if self.template is not None:
            fn = self.template.function_for(reference)
            if fn is not None:
                return self.functions.get(fn.logical_id)
        name = function_name_of(reference)
        return self.functions.get(name) or self.functions.get(reference)

    def _check_resources(self) -> None:
        for state, reference in lambda_resources(self.document):
            if self.test_case is not None and self.test_case.mocks(state):
                continue  # the test case answers it: no function needed
            if self.function_for(reference) is None:
                if self.template is not None:
                    known = ", ".join(sorted(self.template.functions)) or "none"
                    where = f"{self.template.path or 'the template'} (its functions: {known})"
                else:
                    known = ", ".join(sorted(self.functions)) or "none"
                    where = f"the handlers given (names: {known})"
                raise UnknownResourceError(f"state {state!r}: Resource {reference!r} matches no function in {where}")

    def open(self) -> LocalRunner:
        """Point boto3 at the emulator, create the template's resources, start SQS deliveries."""
        with self._lock:
            if self._opened:
                return self
            self.emulator.apply()
            try:
                if self._reset:
                    self.emulator.reset()
                if self.template is not None:
                    self.emulator.provision(self.template)
                    self.services.provision(self.template)
                    self._start_deliveries(self.template)
                self.emulator.router.add(self.tokens)
            except BaseException:
                self.services.close()
                self.emulator.restore()
                raise
            self._opened = True
        return self

    def _start_deliveries(self, template: Template) -> None:
        for mapping in template.event_sources:
            if not mapping.enabled:
                continue
            function = self.functions[mapping.function]
            queue = template.resources[mapping.queue]
            # Failed batches come back at once on the virtual clock; in real time after the
            # queue's own visibility timeout.
            visibility = int(queue.properties.get("VisibilityTimeout", 30)) if self.real_time else 0
            self.services.add_delivery(
                queue.name, function, mapping, retry_visibility=visibility, on_error=self.delivery_errors.append
            )

    def close(self) -> None:
        with self._lock:
            if not self._opened:
                return
            self.services.close()
            self.emulator.router.remove(self.tokens)
            self.emulator.restore()
            self._opened = False

    def __enter__(self) -> LocalRunner:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- executions --------------------------------------------------------------------------------

    def integrations(self, clock: Any) -> Any:
        """The ``asl.Integrations`` of one execution on ``clock``, for any definition (``sfn-workers serve``)."""
        self.open()
        if self.test_case is None:
            return _Integrations(self, clock)
        return MockedIntegrations(
            _Integrations(self, clock), self.test_case, task_resources(self.document), self.tokens
        )

    def clock(self) -> Any:
        from sfn_workers.local import asl

        return asl.RealClock() if self.real_time else asl.VirtualClock()

    def execution(
        self,
        input: Any,
        *,
        name: str | None = None,
        clock: Any = None,
        listener: Listener | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """An ``asl.Execution`` of this state machine, not started."""
        from sfn_workers.local import asl

        clock = clock or self.clock()
        return asl.Execution(
            self.definition,
            input,
            integrations=self.integrations(clock),
            clock=clock,
            tokens=self.tokens,
            name=name,
            state_machine_name=self.name,
            state_machine_arn=self.arn,
            listener=listener,
            context=context,
        )

    def run(
        self,
        input: Any,
        *,
        name: str | None = None,
        clock: Any = None,
        listener: Listener | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run one execution to its end; returns the ``ExecutionResult``."""
        return self.execution(input, name=name, clock=clock, listener=listener, context=context).run()

    def start(
        self,
        input: Any,
        *,
        name: str | None = None,
        clock: Any = None,
        listener: Listener | None = None,
    ) -> RunningExecution:
        """Run one execution in a background thread (answer its task tokens meanwhile)."""
        return RunningExecution(self.execution(input, name=name, clock=clock, listener=listener))


def _test_case(
    mock_config: str | Path | Mapping[str, Any] | MockConfig | None, test_case: str | None, name: str, *, bare: bool
) -> Any:
    if test_case is None:
        return None
    if mock_config is None:
        raise MockConfigError(f"test case {test_case!r} needs a mock config (mock_config=..., --mock-config FILE)")
    config = mock_config if isinstance(mock_config, MockConfig) else MockConfig.load(mock_config)
    return config.test_case(name, test_case, only_machine=bare)


class RunningExecution:
    """An execution running in a background thread."""

    def __init__(self, execution: Any) -> None:
        self.execution = execution
        self._result: Any = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sfn-execution", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self.execution.run()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        """The ``ExecutionResult``; raises TimeoutError if it has not ended within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the execution is still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        self.execution.stop(error, cause)


class _Integrations:
    """The interpreter's Integrations for one execution: template functions and the emulator."""

    def __init__(self, runner: LocalRunner, clock: Any) -> None:
        self.runner = runner
        self.clock = clock

    def invoke_lambda(self, call: Any) -> Any:
        function = self.runner.function_for(call.function)
        if function is None:
            from sfn_workers.local.asl import TaskError

            raise TaskError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {call.function} (Service: Lambda, Status Code: 404)",
            )
        return function.invoke(call.payload, state_timeout=call.timeout_seconds)

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        return self.runner.services.call(resource, parameters, self.clock.hold, context)


def run_execution(
    source: Source,
    input: Any = None,
    *,
    state_machine: str | None = None,
    clock: Any = None,
    real_time: bool = False,
    listener: Listener | None = None,
    handlers: Mapping[str, Handler] | None = None,
    name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
    transport: str = "in-process",
    mock_config: str | Path | Mapping[str, Any] | MockConfig | None = None,
    test_case: str | None = None,
) -> Any:
    """Run one execution of a state machine locally and return its ``ExecutionResult``.

    Args:
        source: ``"template.yaml"`` (a SAM template: the handlers run in-process, its buckets,
            tables, topics and queues are created on the embedded emulator), or an ASL definition
            (path, JSON text or mapping) whose Lambda tasks ``handlers`` serve.
        input: the execution input (any JSON value).
        state_machine: which state machine of the template, when it has several.
        clock: an ``asl.VirtualClock`` (default: a new one, starting now) or ``asl.RealClock``.
        real_time: use the real clock (Waits and retry intervals really wait).
        listener: called with each history event as it happens.
        handlers: ``{function name: handler(event, context)}`` instead of (or without) a template.
        name: the execution name (default: a UUID).
        parameters: template parameter overrides.
        endpoint_url: use this AWS emulator instead of the embedded one.
        transport: ``"in-process"`` (default) or ``"http"``: how boto3 reaches the embedded emulator.
        mock_config: a mock config in AWS Step Functions Local's format (see :mod:`sfn_workers.local.mock_config`).
        test_case: the test case of ``mock_config`` to run (its mocked states call no integration).

    Returns the interpreter's ``ExecutionResult``: ``status``, ``output``, ``error``, ``cause``,
    ``history``. Raises ``FileNotFoundError``, :class:`TemplateError` (e.g. a Resource that no
    function matches) or ``asl.DefinitionError`` before running anything.
    """
    with LocalRunner(
        source,
        state_machine=state_machine,
        handlers=handlers,
        real_time=real_time,
        parameters=parameters,
        endpoint_url=endpoint_url,
        transport=transport,
        mock_config=mock_config,
        test_case=test_case,
    ) as runner:
        return runner.run(input, name=name, clock=clock, listener=listener)
