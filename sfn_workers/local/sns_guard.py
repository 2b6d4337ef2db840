"""Keep the embedded SNS from making this machine POST to the network.

moto delivers to an http/https subscription by POSTing each message to its endpoint. A local
runner or ``serve`` exposed to a client it does not trust would then send requests anywhere on
that client's behalf, so the embedded emulator accepts http/https subscriptions only to loopback
URLs (``localhost``, ``127.0.0.0/8``, ``::1``), unless :func:`allow_remote_delivery` (``serve
--allow-remote-sns``) lifts it. A refused Subscribe answers ``InvalidParameter``, as SNS does for a
bad endpoint.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any
from urllib.parse import urlsplit

__all__ = ["allow_remote_delivery", "install", "is_loopback_url", "remote_delivery_allowed"]

_lock = threading.Lock()
_allowed = False
_installed = False


def allow_remote_delivery(allowed: bool = True) -> None:
    """Let the embedded SNS deliver to any http/https URL (process-wide)."""
    global _allowed
    _allowed = allowed


def remote_delivery_allowed() -> bool:
    return _allowed


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine by a loopback literal or ``localhost`` (no DNS lookup:
    a name's address can change between the check and the POST)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install() -> None:
    """Guard moto's SNS Subscribe (once per process; the embedded moto lives in this process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.sns.exceptions import SNSInvalidParameter
        from moto.sns.models import SNSBackend

        original = SNSBackend.subscribe

        def subscribe(self: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
            if protocol in ("http", "https") and not _allowed and not is_loopback_url(endpoint):
                raise SNSInvalidParameter(
                    f"Invalid parameter: Endpoint: {endpoint[:200]}: the local emulator delivers http/https "
                    "notifications to loopback URLs only (sfn-workers serve --allow-remote-sns lifts this)"
                )
            return original(self, topic_arn, endpoint, protocol)

        SNSBackend.subscribe = subscribe  # type: ignore[method-assign]
        _installed = True
