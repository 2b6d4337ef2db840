"""Starting the local Step Functions API: environment, backend and HTTP server, and stopping them in order.

:func:`start_server` is what ``sfn-workers serve`` runs and what a test fixture can use::

    server = start_server("template.yaml", port=0)
    sfn = boto3.client("stepfunctions", endpoint_url=server.url, ...)
    ...
    server.close()
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sfn_workers.local import sns_guard
from sfn_workers.local.api.http import DEFAULT_PORT, ApiHttpServer
from sfn_workers.local.api.protocol import dispatch
from sfn_workers.local.api.retention import DEFAULT_HISTORY_BUDGET_BYTES, DEFAULT_KEEP_HISTORIES, Retention
from sfn_workers.local.api.stepfunctions import LocalStepFunctions
from sfn_workers.local.environment import LocalEnvironment
from sfn_workers.local.identity import REGION
from sfn_workers.local.integrations.states import BackendMachines
from sfn_workers.local.mock_config import MockConfig, ServeMocks

__all__ = ["DEFAULT_PORT", "Server", "banner", "serve", "start_server"]


@dataclass
class Server:
    """A running local API: the backend (``service``), its HTTP server and the environment behind them."""

    service: LocalStepFunctions
    http: ApiHttpServer
    environment: LocalEnvironment
    remote_sns_before: bool = False  # the process-wide SNS delivery policy to restore on close

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def runner(self) -> LocalEnvironment:
        """The environment (named ``runner`` before it was shared with ``run``): ``.emulator``, ``.tokens``."""
        return self.environment

    def close(self, grace: float = 5.0) -> None:
        """Graceful shutdown: refuse new executions and abort the running ones, stop the HTTP server,
        restore the environment variables."""
        try:
            self.service.close(grace)
            self.http.stop(grace=min(grace, 2.0))
        finally:
            self.environment.close()
            sns_guard.allow_remote_delivery(self.remote_sns_before)


def start_server(
    template: str | Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    virtual_time: bool = False,
    max_executions: int = 64,
    max_queued: int = 1000,
    keep_executions: int = DEFAULT_KEEP_HISTORIES,
    history_budget_bytes: int = DEFAULT_HISTORY_BUDGET_BYTES,
    parameters: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
    allow_hosts: Iterable[str] = (),
    request_timeout: float = 10.0,
    mock_config: str | Path | Mapping[str, Any] | None = None,
    allow_remote_sns: bool = False,
) -> Server:
    """Start the local Step Functions API on ``host:port`` (0: any free port) and return it.

    ``template``: a SAM template whose functions run in-process and whose state machines are created
    at start (None: only state machines created through the API, running against the emulator).
    ``mock_config``: a mock config in AWS Step Functions Local's format; StartExecution of
    ``stateMachineArn#TestCase`` runs that test case.
    ``allow_hosts``: Host header names served besides this machine's; ``allow_remote_sns``: let the
    embedded SNS deliver to non-loopback http/https URLs (process-wide, until :meth:`Server.close`).
    Raises TemplateError, MockConfigError, ApiError (a state machine that is not valid ASL) or OSError
    (cannot listen).
    """
    loaded = None
    if template is not None:
        from sfn_workers.local.sam import load_template

        loaded = load_template(Path(template), parameters=parameters)
    environment = LocalEnvironment(loaded, real_time=not virtual_time, endpoint_url=endpoint_url)
    machines = list(loaded.state_machines.values()) if loaded is not None else []
    mocks = MockConfig.load(mock_config) if mock_config is not None else None
    for machine in machines:
        mocked = mocks.mocked_states(machine.name) if mocks is not None else set()
        environment.check_resources(machine.definition, skip=mocked.__contains__)
    service = LocalStepFunctions(
        environment.integrations,
        environment.tokens,
        clock=environment.clock_factory,
        max_executions=max_executions,
        max_queued=max_queued,
        keep_executions=keep_executions,
        history_budget_bytes=history_budget_bytes,
    )
    # nested executions (states:startExecution) are executions of this server, listed like any other
    environment.services.connect(environment, BackendMachines(service, Retention.io))
    if mocks is not None:
        service.mocks = ServeMocks(mocks, environment.tokens)
    for machine in machines:
        service.add_state_machine(machine.name, machine.definition, type=machine.type)
    actions = service.actions()

    def answer(target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        _action, _request, status, body = dispatch(actions, target, raw, before=None)
        return status, body

    http = ApiHttpServer(answer, host, port, allow_hosts=allow_hosts, request_timeout=request_timeout)
    previous_sns = sns_guard.remote_delivery_allowed()
    sns_guard.allow_remote_delivery(allow_remote_sns)
    try:
        # In-process handlers report their task tokens to this server (restored on close).
        environment.open(sfn_url=http.url)
        http.start()
    except BaseException:
        http.stop(grace=0)
        environment.close()
        sns_guard.allow_remote_delivery(previous_sns)
        raise
    return Server(service, http, environment, previous_sns)


def serve(
    template: str | Path | None = None,
    *,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    **options: Any,
) -> int:
    """Run the API until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully; returns 0.

    ``options`` are :func:`start_server`'s.
    """
    stop = stop or threading.Event()
    server = start_server(template, **options)
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        for line in banner(server):
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


def banner(server: Server) -> Iterator[str]:
    """What ``serve`` prints once listening: the URL, the state machines, how to point clients at it."""
    yield f"sfn-workers serve: Step Functions API on {server.url}"
    for item in server.service.list_state_machines({})["stateMachines"]:
        yield f"  state machine {item['name']}: {item['stateMachineArn']}"
    yield f"  export AWS_ENDPOINT_URL_SFN={server.url}   # boto3, the AWS CLI, sam local invoke"
    yield f"  export AWS_DEFAULT_REGION={REGION} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing   # any values"
