"""boto3 clients: created on first use, cached for warm invocations, injectable, deadline-bounded.

Nothing here imports boto3 until a client is asked for, so ``import sfn_workers`` and a
direct-mode invocation with a small payload never pay for it (boto3's import alone costs more than
a small pydantic handler's whole cold start). Endpoints come from boto3's own
``AWS_ENDPOINT_URL_<SERVICE>`` variables, which is how a local emulator is reached.

No call made for an invocation may wait past that invocation's deadline. botocore fixes a client's
connect and read timeouts when it is made, so when little time is left :meth:`Clients.get` hands
out a client whose timeouts fit in it: one per service and per step of a short ladder of timeouts
(at most 8 per service), made once and cached like the others.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from sfn_workers.context import current_context

__all__ = ["Clients", "default_clients", "polling_client", "timeout_step"]

# botocore's service names, keyed by the short names users pass in ``clients={...}``.
_ALIASES = {"sfn": "stepfunctions", "states": "stepfunctions"}
# The suffix of boto3's AWS_ENDPOINT_URL_<SERVICE> variable, where it is not the upper-case name.
_ENDPOINT_IDS = {"stepfunctions": "SFN"}
# (connect, read) timeouts of the clients made for calls with time to spare, in seconds.
_TIMEOUTS = {"stepfunctions": (2.0, 5.0)}
_DEFAULT_TIMEOUTS = (5.0, 30.0)
# Timeouts of the clients made for calls with little time left: connect and read each get at most
# half of it, so the two together end by the deadline.
_LADDER = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)


def timeout_step(service: str, remaining: float | None) -> float | None:
    """The connect/read timeout a call with ``remaining`` seconds left gets, or None for the defaults."""
    connect, read = _TIMEOUTS.get(service, _DEFAULT_TIMEOUTS)
    if remaining is None or remaining >= connect + read:
        return None
    fitting = [step for step in _LADDER if step <= remaining / 2.0]
    return fitting[-1] if fitting else _LADDER[0]


def _endpoint(service: str) -> str | None:
    """The endpoint boto3 would use from the environment (a local emulator), else None."""
    env = os.environ
    return env.get("AWS_ENDPOINT_URL_" + _ENDPOINT_IDS.get(service, service.upper())) or env.get("AWS_ENDPOINT_URL")


class Clients:
    """A per-process cache of boto3 clients, with optional injected ones.

    ``Clients({"s3": my_s3})`` uses ``my_s3`` for S3 (whatever its timeouts: it is yours) and
    creates the others on first use. Thread-safe: the callback watchdog and heartbeat threads
    share the cache. Created clients are kept per service, endpoint (``AWS_ENDPOINT_URL_*``, so
    a test pointing boto3 at a new local emulator gets a new client) and timeout step.
    """

    def __init__(self, injected: Mapping[str, Any] | None = None) -> None:
        self._injected: dict[str, Any] = {_ALIASES.get(name, name): client for name, client in (injected or {}).items()}
        self._clients: dict[tuple[str, str | None, float | None], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def get(self, service: str, *, remaining: float | None = None) -> Any:
        """The client for ``service`` ("s3", "stepfunctions"...), created on first use.

        ``remaining``: seconds the call may take; by default, what is left of the running task's
        deadline. With less time left than the usual timeouts, the client's timeouts fit in it.
        """
        service = _ALIASES.get(service, service)
        injected = self._injected.get(service)
        if injected is not None:
            return injected
        if remaining is None:
            ctx = current_context()
            if ctx is not None and ctx.deadline is not None:
                remaining = ctx.deadline.remaining()
        key = (service, _endpoint(service), timeout_step(service, remaining))
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._create(service, key[2])
                self._clients[key] = client
        return client

    def created(self) -> tuple[str, ...]:
        """Names of the services that have a client (for tests and the cold-start check)."""
        return tuple(sorted(set(self._injected) | {service for service, _, _ in self._clients}))

    def clear(self) -> None:
        """Forget the clients created so far (injected ones stay); the next ``get`` creates anew."""
        with self._lock:
            self._clients.clear()

    def _create(self, service: str, step: float | None) -> Any:
        import boto3  # deferred: the cold-start budget has no room for boto3 at import
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session()
        connect, read = _TIMEOUTS.get(service, _DEFAULT_TIMEOUTS)
        # sfn-workers retries its own calls (jittered, inside the Lambda's deadline), so botocore
        # adds at most one retry of its own (2 requests per API call) rather than multiplying layers.
        # The SendTask* calls are retried by callbacks.py alone, inside the Lambda's remaining
        # time: botocore's own backoff knows no deadline, and the watchdog has only
        # timeout_margin_ms to report. A deadline-bounded client makes one request per call.
        requests = 1 if service == "stepfunctions" or step is not None else 2
        if step is not None:
            connect, read = min(connect, step), min(read, step)
        config = Config(
            retries={"mode": "standard", "total_max_attempts": requests}, connect_timeout=connect, read_timeout=read
        )
        return self._session.client(service, config=config)


def polling_client(service: str, read_timeout: float) -> Any:
    """A client for long polls (GetActivityTask waits up to 60 s): a read timeout above the poll, one
    request per call (the caller retries with jitter and a budget)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout)
    session: Any = boto3.session.Session()
    return session.client(service, config=config)


_default = Clients()


def default_clients() -> Clients:
    """The process-wide cache that handlers share when no clients are injected."""
    return _default
