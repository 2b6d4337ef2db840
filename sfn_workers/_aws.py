"""boto3 clients: created on first use, cached for warm invocations, injectable.

Nothing here imports boto3 until a client is asked for, so ``import sfn_workers`` and a
direct-mode invocation with a small payload never pay for it (boto3's import alone costs more than
a small pydantic handler's whole cold start). Endpoints come from boto3's own
``AWS_ENDPOINT_URL_<SERVICE>`` variables, which is how a local emulator is reached.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["Clients", "default_clients"]

# botocore's service names, keyed by the short names users pass in ``clients={...}``.
_ALIASES = {"sfn": "stepfunctions", "states": "stepfunctions"}


class Clients:
    """A per-process cache of boto3 clients, with optional injected ones.

    ``Clients({"s3": my_s3})`` uses ``my_s3`` for S3 and creates the others on first use.
    Thread-safe: the callback watchdog and heartbeat threads share the cache.
    """

    def __init__(self, injected: Mapping[str, Any] | None = None) -> None:
        self._clients: dict[str, Any] = {_ALIASES.get(name, name): client for name, client in (injected or {}).items()}
        self._lock = threading.Lock()
        self._session: Any = None

    def get(self, service: str) -> Any:
        """The client for ``service`` ("s3", "stepfunctions"...), created on first use."""
        service = _ALIASES.get(service, service)
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._create(service)
                self._clients[service] = client
        return client

    def created(self) -> tuple[str, ...]:
        """Names of the services that have a client (for tests and the cold-start check)."""
        return tuple(sorted(self._clients))

    def _create(self, service: str) -> Any:
        import boto3  # deferred: the cold-start budget has no room for boto3 at import
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session()

        # sfn-workers retries its own calls (jittered, inside the Lambda's deadline), so botocore
        # adds at most one retry of its own (2 requests per API call) rather than multiplying layers.
        config = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=30)
        if service == "stepfunctions":
            # The SendTask* calls are retried by callbacks.py alone, inside the Lambda's remaining
            # time: botocore's own backoff (up to seconds per retry) knows no deadline, and the
            # watchdog has only timeout_margin_ms to report.
            config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
        return self._session.client(service, config=config)


_default = Clients()


def default_clients() -> Clients:
    """The process-wide cache that handlers share when no clients are injected."""
    return _default
