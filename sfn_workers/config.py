"""Settings: an explicit argument wins over an ``SFN_WORKERS_*`` variable, which wins over the default.

Settings are read once, when a handler is decorated (at cold start), so a bad value in a variable
fails the import of the handler module with a message naming the variable, not the first event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sfn_workers.errors import ConfigurationError

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_THRESHOLD_BYTES",
    "DEFAULT_TIMEOUT_MARGIN_MS",
    "ENV_BUCKET",
    "ENV_HEARTBEAT_SECONDS",
    "ENV_PREFIX",
    "ENV_THRESHOLD_BYTES",
    "ENV_TIMEOUT_MARGIN_MS",
    "STATES_PAYLOAD_LIMIT",
    "Settings",
    "resolve_setting",
]

ENV_BUCKET = "SFN_WORKERS_BUCKET"
ENV_PREFIX = "SFN_WORKERS_PREFIX"
ENV_THRESHOLD_BYTES = "SFN_WORKERS_THRESHOLD_BYTES"
ENV_TIMEOUT_MARGIN_MS = "SFN_WORKERS_TIMEOUT_MARGIN_MS"
ENV_HEARTBEAT_SECONDS = "SFN_WORKERS_HEARTBEAT_SECONDS"

#: A state's input or output may not pass this many UTF-8 bytes (States.DataLimitExceeded).
STATES_PAYLOAD_LIMIT = 262_144
#: A Task's result is merged into a state that must stay under the limit: leave it room.
DEFAULT_THRESHOLD_BYTES = 65_536
DEFAULT_PREFIX = "sfn-workers/"
DEFAULT_TIMEOUT_MARGIN_MS = 1_500

T = TypeVar("T")


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return value


def _heartbeat(text: str) -> float | None:
    stripped = text.strip().lower()
    if stripped in ("", "0", "off", "none"):
        return None
    value = float(stripped)
    if not value > 0:
        raise ValueError("must be a positive number of seconds, or 0/off")
    return value


def resolve_setting(
    explicit: T | None,
    variable: str,
    parse: Callable[[str], T],
    default: T,
    environ: Mapping[str, str] | None = None,
) -> T:
    """``explicit`` if given, else the parsed environment variable, else ``default``.

    A variable that does not parse raises :class:`ConfigurationError` naming it and its value.
    """
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    raw = env.get(variable)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}={raw!r} is not valid: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings one decorated handler runs with (resolved once, at decoration time)."""

    bucket: str | None
    prefix: str
    threshold_bytes: int
    timeout_margin_ms: int
    heartbeat_seconds: float | None

    @classmethod
    def resolve(
        cls,
        *,
        bucket: str | None = None,
        prefix: str | None = None,
        threshold_bytes: int | None = None,
        timeout_margin_ms: int | None = None,
        heartbeat_seconds: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        settings = cls(
            bucket=resolve_setting(bucket, ENV_BUCKET, str.strip, None, environ) or None,
            prefix=resolve_setting(prefix, ENV_PREFIX, str.strip, DEFAULT_PREFIX, environ),
            threshold_bytes=resolve_setting(
                threshold_bytes, ENV_THRESHOLD_BYTES, _positive_int, DEFAULT_THRESHOLD_BYTES, environ
            ),
            timeout_margin_ms=resolve_setting(
                timeout_margin_ms,
                ENV_TIMEOUT_MARGIN_MS,
                _non_negative_int,
                DEFAULT_TIMEOUT_MARGIN_MS,
                environ,
            ),
            heartbeat_seconds=resolve_setting(heartbeat_seconds, ENV_HEARTBEAT_SECONDS, _heartbeat, None, environ),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if self.threshold_bytes <= 0 or self.threshold_bytes > STATES_PAYLOAD_LIMIT:
            raise ConfigurationError(
                f"threshold_bytes={self.threshold_bytes} must be between 1 and {STATES_PAYLOAD_LIMIT} "
                "(the Step Functions payload limit)"
            )
        if self.timeout_margin_ms < 0:
            raise ConfigurationError(f"timeout_margin_ms={self.timeout_margin_ms} must not be negative")
        if self.heartbeat_seconds is not None and self.heartbeat_seconds <= 0:
            raise ConfigurationError(f"heartbeat_seconds={self.heartbeat_seconds} must be positive")
