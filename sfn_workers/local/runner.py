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
from typing import TYPE_CHECKING, Any

from sfn_workers.local.environment import LocalEnvironment
from sfn_workers.local.identity import arn
from sfn_workers.local.lambdas import Handler, LocalFunction
from sfn_workers.local.mock_config import MockConfig, MockConfigError, MockedIntegrations, TestCase, task_resources
from sfn_workers.local.sam import (
    StateMachine,
    Template,
    TemplateError,
    is_template,
    load_template,
    read_document,
)

if TYPE_CHECKING:
    from sfn_workers.local.asl import Clock, Execution, ExecutionResult, Integrations, TokenBroker
    from sfn_workers.local.emulator import Emulator
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

    The functions, emulator, token broker and clocks are its :class:`LocalEnvironment`
    (``runner.environment``), the same object ``sfn-workers serve`` runs its executions in.
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

        template, machine, document, where = _read_source(source, state_machine, parameters)
        self.document = document
        self.source = where
        if machine is not None:
            self.name, self.arn = machine.name, machine.arn
        else:
            self.name = "StateMachine"
            self.arn = arn("states", f"stateMachine:{self.name}")
        self.definition = asl.parse_definition(document)
        self.test_case = _test_case(mock_config, test_case, self.name, bare=template is None)
        self.environment = LocalEnvironment(
            template,
            handlers=handlers,
            real_time=real_time,
            endpoint_url=endpoint_url,
            reset=reset,
            transport=transport,
        )
        mocked = self.test_case.mocks if self.test_case is not None else None
        self.environment.check_resources(document, skip=mocked)  # a mocked state needs no function
        self.environment.services.connect(self)  # nested executions of this runner's state machines

    # -- the environment's parts, under the names the runner has always had -------------------------

    @property
    def template(self) -> Template | None:
        return self.environment.template

    @property
    def real_time(self) -> bool:
        return self.environment.real_time

    @property
    def functions(self) -> dict[str, LocalFunction]:
        return self.environment.functions

    @property
    def emulator(self) -> Emulator:
        """The embedded AWS (``runner.emulator.client("s3")`` for assertions)."""
        return self.environment.emulator

    @property
    def tokens(self) -> TokenBroker:
        """The token broker of this runner's executions (answers SendTask*)."""
        return self.environment.tokens

    @property
    def services(self) -> Services:
        """The service integrations and SQS deliveries (``runner.services.deliveries``)."""
        return self.environment.services

    @property
    def delivery_errors(self) -> list[BaseException]:
        return self.environment.delivery_errors

    def function_for(self, reference: str) -> LocalFunction | None:
        """The local function a Resource ARN, FunctionName or name refers to."""
        return self.environment.function_for(reference)

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> LocalRunner:
        """Point boto3 at the emulator, create the template's resources, start SQS deliveries."""
        self.environment.open()
        return self

    def close(self) -> None:
        """Stop deliveries; restore the environment variables."""
        self.environment.close()

    def __enter__(self) -> LocalRunner:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- executions --------------------------------------------------------------------------------

    def integrations(self, clock: Clock) -> Integrations:
        """The ``asl.Integrations`` of one execution on ``clock`` (the test case's mocks first, if any)."""
        integrations = self.environment.integrations(clock)
        if self.test_case is None:
            return integrations
        return MockedIntegrations(integrations, self.test_case, task_resources(self.document), self.tokens)

    def clock(self) -> Clock:
        """A new clock for one execution (virtual unless ``real_time``)."""
        return self.environment.clock()

    def execution(
        self,
        input: Any,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        listener: Listener | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Execution:
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
        clock: Clock | None = None,
        listener: Listener | None = None,
        context: Mapping[str, Any] | None = None,
        approvals: Any = None,
    ) -> ExecutionResult:
        """Run one execution to its end; returns the ``ExecutionResult``.

        ``approvals``: ``{state: Answer}`` (or an ``Approvals``) answering hand-off states through
        the template's decision function (:mod:`sfn_workers.local.approvals`).
        """
        if approvals is not None:
            from sfn_workers.local.approvals import Approvals

            listener = Approvals.of(approvals).listener(self.function_for, listener)
        result = self.execution(input, name=name, clock=clock, listener=listener, context=context).run()
        # Functions an SQS message reached may still be finishing (a token answered before its
        # invocation ended): run returns when they have, so their output stays with this run.
        self.environment.services.wait_idle(timeout=5.0)
        return result

    def start(
        self,
        input: Any,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        listener: Listener | None = None,
    ) -> RunningExecution:
        """Run one execution in a background thread (answer its task tokens meanwhile)."""
        return RunningExecution(self.execution(input, name=name, clock=clock, listener=listener))


def _test_case(
    mock_config: str | Path | Mapping[str, Any] | MockConfig | None, test_case: str | None, name: str, *, bare: bool
) -> TestCase | None:
    if test_case is None:
        return None
    if mock_config is None:
        raise MockConfigError(f"test case {test_case!r} needs a mock config (mock_config=..., --mock-config FILE)")
    config = mock_config if isinstance(mock_config, MockConfig) else MockConfig.load(mock_config)
    return config.test_case(name, test_case, only_machine=bare)


class RunningExecution:
    """An execution running in a background thread."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self._result: ExecutionResult | None = None
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

    def result(self, timeout: float | None = None) -> ExecutionResult:
        """The ``ExecutionResult``; raises TimeoutError if it has not ended within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the execution is still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        self.execution.stop(error, cause)


def run_execution(
    source: Source,
    input: Any = None,
    *,
    state_machine: str | None = None,
    clock: Clock | None = None,
    real_time: bool = False,
    listener: Listener | None = None,
    handlers: Mapping[str, Handler] | None = None,
    name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
    transport: str = "in-process",
    mock_config: str | Path | Mapping[str, Any] | MockConfig | None = None,
    test_case: str | None = None,
    approvals: Any = None,
) -> ExecutionResult:
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
        approvals: ``{state name: Answer}`` (or an ``Approvals``, to read its responses afterwards):
            a person's decision for states whose worker hands its token off, sent through the
            template's decision function (see :mod:`sfn_workers.local.approvals`).

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
        return runner.run(input, name=name, clock=clock, listener=listener, approvals=approvals)
