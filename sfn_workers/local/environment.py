"""The local environment an execution runs in: one object for ``run``, ``run_execution`` and ``serve``.

It holds what every local execution shares, whatever state machine it runs:

- the **functions**: the template's Lambda functions (run in-process) and the handlers given instead;
- the **emulator**: the embedded moto (S3, SQS, SNS, DynamoDB) with the template's resources, and
  the SQS event source mappings delivering to the functions;
- the **token broker** every execution issues task tokens from, answered by the SendTask* endpoint;
- the **clock factory**: a virtual clock per execution, or real time.

While open, it points this process's boto3 at the emulator (``AWS_ENDPOINT_URL_*``, fake
credentials), and :meth:`close` restores every variable it changed. ``serve`` passes its own URL as
``sfn_url`` so that in-process handlers report task tokens to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sfn_workers.local.emulator import Emulator
from sfn_workers.local.lambdas import Handler, LocalFunction, PythonFunction, callable_function
from sfn_workers.local.sam import Template, UnknownResourceError, function_name_of, lambda_resources
from sfn_workers.local.services import Services

if TYPE_CHECKING:
    from sfn_workers.local.asl import Clock, Integrations, LambdaInvocation, TokenBroker

__all__ = ["LocalEnvironment", "clock_factory"]


def clock_factory(real_time: bool) -> Callable[[], Clock]:
    """How each execution gets its clock: real time, or a virtual clock of its own (the one choice
    ``run`` and ``serve`` both make, from ``--real-time``/``--virtual-time``)."""
    from sfn_workers.local import asl

    return asl.RealClock if real_time else asl.VirtualClock


class LocalEnvironment:
    """Functions, emulator, token broker and clocks shared by the executions of one runner or server.

    Args:
        template: the loaded SAM template (None: only ``handlers`` and state machines given later).
        handlers: ``{function name or logical id: handler(event, context)}`` replacing a template
            function, or adding one.
        real_time: executions run on real time (default: each on its own virtual clock).
        endpoint_url: an external AWS emulator instead of the embedded moto.
        reset: empty the embedded emulator when opening.
        transport: ``"in-process"`` or ``"http"`` (see :data:`sfn_workers.local.emulator.TRANSPORTS`).
    """

    def __init__(
        self,
        template: Template | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        real_time: bool = False,
        endpoint_url: str | None = None,
        reset: bool = True,
        transport: str = "in-process",
    ) -> None:
        from sfn_workers.local import asl

        self.template = template
        self.real_time = real_time
        self.clock_factory = clock_factory(real_time)
        self.functions: dict[str, LocalFunction] = {}
        self._resolved: dict[str, LocalFunction | None] = {}  # reference -> function (cache)
        if template is not None:
            for logical_id, fn in template.functions.items():
                self.functions[logical_id] = PythonFunction(fn)
        for name, handler in (handlers or {}).items():
            existing = self.function_for(name)
            if isinstance(existing, PythonFunction):
                self.functions[existing.function.logical_id] = PythonFunction(existing.function, handler=handler)
            else:
                self.functions[name] = callable_function(name, handler)
            self._resolved.clear()
        self.emulator = Emulator(endpoint_url=endpoint_url, transport=transport)
        self.tokens: TokenBroker = asl.TokenBroker()
        self.services = Services(self.emulator.url)
        self.delivery_errors: list[BaseException] = []
        self._reset = reset
        self._opened = False
        self._lock = threading.Lock()

    # -- functions ---------------------------------------------------------------------------------

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

    def check_resources(self, definition: Mapping[str, Any], *, skip: Callable[[str], bool] | None = None) -> None:
        """Refuse a definition whose Lambda Resource no function matches, before anything runs
        (``skip(state name)``: states that need no function, e.g. mocked ones)."""
        for state, reference in lambda_resources(definition):
            if skip is not None and skip(state):
                continue
            if self.function_for(reference) is None:
                if self.template is not None:
                    known = ", ".join(sorted(self.template.functions)) or "none"
                    where = f"{self.template.path or 'the template'} (its functions: {known})"
                else:
                    known = ", ".join(sorted(self.functions)) or "none"
                    where = f"the handlers given (names: {known})"
                raise UnknownResourceError(f"state {state!r}: Resource {reference!r} matches no function in {where}")

    # -- executions --------------------------------------------------------------------------------

    def clock(self) -> Clock:
        """A new clock for one execution."""
        return self.clock_factory()

    def integrations(self, clock: Clock) -> Integrations:
        """The ``asl.Integrations`` of one execution on ``clock``: these functions, this emulator."""
        self.open()
        return _Integrations(self, clock)

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self, *, sfn_url: str | None = None) -> LocalEnvironment:
        """Point boto3 at the emulator, create the template's resources, start SQS deliveries.

        ``sfn_url``: where in-process handlers send SendTask* (default: the embedded endpoint).
        """
        with self._lock:
            if self._opened:
                return self
            self.emulator.apply({"AWS_ENDPOINT_URL_SFN": sfn_url} if sfn_url else None)
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
        """Stop deliveries and restore every environment variable :meth:`open` changed."""
        with self._lock:
            if not self._opened:
                return
            self.services.close()
            self.emulator.router.remove(self.tokens)
            self.emulator.restore()
            self._opened = False

    def __enter__(self) -> LocalEnvironment:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Integrations:
    """The interpreter's Integrations for one execution: the environment's functions and emulator."""

    def __init__(self, environment: LocalEnvironment, clock: Clock) -> None:
        self.environment = environment
        self.clock = clock

    def invoke_lambda(self, call: LambdaInvocation) -> Any:
        function = self.environment.function_for(call.function)
        if function is None:
            from sfn_workers.local.asl import TaskError

            raise TaskError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {call.function} (Service: Lambda, Status Code: 404)",
            )
        return function.invoke(call.payload, state_timeout=call.timeout_seconds)

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        from sfn_workers.local.activities import is_activity

        if is_activity(resource):  # queued for a worker; the state then waits for the task token
            from sfn_workers.local.activity_tasks import schedule

            return schedule(self.environment.tokens, resource, parameters, context)
        return self.environment.services.call(resource, parameters, self.clock.hold, context)
