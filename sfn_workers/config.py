"""Settings: an explicit argument wins over an ``SFN_WORKERS_*`` variable, which wins over the default.

Settings are read once, when a handler is decorated (at cold start), so a bad value in a variable
fails the import of the handler module with a message naming the variable, not the first event.
One rule for both sources: a number must be finite; ``0`` (or ``off``) switches heartbeats off; an
empty variable counts as unset, an empty argument is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from sfn_workers._limits import PAYLOAD_MAX_BYTES
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
    "MARGIN_SHARE",
    "MAX_TIMEOUT_MARGIN_MS",
    "STATES_PAYLOAD_LIMIT",
    "Settings",
    "effective_margin_ms",
    "non_empty",
    "resolve_setting",
]

ENV_BUCKET = "SFN_WORKERS_BUCKET"
ENV_PREFIX = "SFN_WORKERS_PREFIX"
ENV_THRESHOLD_BYTES = "SFN_WORKERS_THRESHOLD_BYTES"
ENV_TIMEOUT_MARGIN_MS = "SFN_WORKERS_TIMEOUT_MARGIN_MS"
ENV_HEARTBEAT_SECONDS = "SFN_WORKERS_HEARTBEAT_SECONDS"

#: A state's input or output may not pass this many UTF-8 bytes (States.DataLimitExceeded).
STATES_PAYLOAD_LIMIT = PAYLOAD_MAX_BYTES
#: A Task's result is merged into a state that must stay under the limit: leave it room.
DEFAULT_THRESHOLD_BYTES = 65_536
DEFAULT_PREFIX = "sfn-workers/"
DEFAULT_TIMEOUT_MARGIN_MS = 1_500
#: A Lambda runs 15 minutes at most: a margin this large could never leave the function any time.
MAX_TIMEOUT_MARGIN_MS = 900_000
#: On a short timeout the margin is at most this share of the time the invocation started with,
#: so a 1 s Lambda returning in microseconds is never reported as WorkerTimeout.
MARGIN_SHARE = 0.25

T = TypeVar("T")


def _number(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _margin(value: float) -> int:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of milliseconds")
    if value < 0 or value >= MAX_TIMEOUT_MARGIN_MS:
        raise ValueError(
            f"must be at least 0 and less than {MAX_TIMEOUT_MARGIN_MS} ms (a Lambda runs 15 minutes at most)"
        )
    return int(value)


def _heartbeat(value: float) -> float | None:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of seconds, or 0/off")
    if value < 0:
        raise ValueError("must be a positive number of seconds, or 0/off")
    return value or None


def _heartbeat_text(text: str) -> float | None:
    stripped = text.strip().lower()
    if stripped in ("0", "off", "none"):
        return None
    return _heartbeat(_number(stripped))


def _margin_text(text: str) -> int:
    return _margin(_number(text))


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
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}={raw!r} is not valid: {exc}") from exc


def _explicit(name: str, value: float | None, check: Callable[[float], T]) -> T | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name}={value!r} must be a number")
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={value!r} is not valid: {exc}") from exc


def non_empty(name: str, value: str | None) -> str | None:
    """``value`` unless it is an empty (or blank) string, which is refused naming the option."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name}={value!r} must be a non-empty string (or left out for the default)")
    return value


class Settings:
    """The settings of one decorated handler that its invocations read (resolved at decoration).

    Offloading reads its own (bucket, prefix, threshold) in :class:`~sfn_workers.S3Offload`.
    A plain class (a frozen dataclass costs every cold start ~0.4 ms to create).
    """

    __slots__ = ("heartbeat_seconds", "timeout_margin_ms")

    def __init__(self, timeout_margin_ms: int, heartbeat_seconds: float | None) -> None:
        self.timeout_margin_ms = timeout_margin_ms
        self.heartbeat_seconds = heartbeat_seconds

    def __repr__(self) -> str:
        return f"Settings(timeout_margin_ms={self.timeout_margin_ms!r}, heartbeat_seconds={self.heartbeat_seconds!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Settings:
            return NotImplemented
        return (self.timeout_margin_ms, self.heartbeat_seconds) == (other.timeout_margin_ms, other.heartbeat_seconds)

    def __hash__(self) -> int:
        return hash((self.timeout_margin_ms, self.heartbeat_seconds))

    @classmethod
    def resolve(
        cls,
        *,
        timeout_margin_ms: float | None = None,
        heartbeat_seconds: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        margin = _explicit("timeout_margin_ms", timeout_margin_ms, _margin)
        heartbeat: float | None
        if heartbeat_seconds is not None and _explicit("heartbeat_seconds", heartbeat_seconds, _heartbeat) is None:
            heartbeat = None  # 0: off, as in the variable
        else:
            heartbeat = resolve_setting(
                _explicit("heartbeat_seconds", heartbeat_seconds, _heartbeat),
                ENV_HEARTBEAT_SECONDS,
                _heartbeat_text,
                None,
                environ,
            )
        return cls(
            timeout_margin_ms=resolve_setting(
                margin, ENV_TIMEOUT_MARGIN_MS, _margin_text, DEFAULT_TIMEOUT_MARGIN_MS, environ
            ),
            heartbeat_seconds=heartbeat,
        )


def effective_margin_ms(configured_ms: int, remaining_ms: float) -> float:
    """The margin one invocation runs with: the configured one, at most a quarter of its time.

    ``remaining_ms`` is the time the invocation started with.
    """
    return min(float(configured_ms), max(0.0, remaining_ms) * MARGIN_SHARE)
