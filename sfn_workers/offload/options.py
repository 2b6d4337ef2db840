"""S3Offload's options: each from its argument, else its ``SFN_WORKERS_*`` variable, else its default.

A bad value fails at decoration time (cold start) with a :class:`ConfigurationError` naming the
argument or the variable, not at the first large output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from sfn_workers.config import resolve_setting
from sfn_workers.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENV_LAMBDA_MEMORY",
    "bucket_name",
    "default_max_bytes",
    "key_prefix",
    "positive_int",
    "setting",
]

T = TypeVar("T")

#: ``max_bytes`` outside Lambda (or when the memory size is unknown): 64 MiB.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Lambda sets it to the function's memory, in MB.
ENV_LAMBDA_MEMORY = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
# JSON text parsed into Python objects can take ~25x its size ("[{},{},...]": 3 bytes -> 72);
# 1/32 of the memory keeps a budget's worth of the worst case inside the function.
_MEMORY_SHARE = 32
_MIN_MAX_BYTES = 1024 * 1024

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_LIMIT = 1024  # S3's limit on a key, in UTF-8 bytes
_KEY_ROOM = 130  # what a key adds after the prefix: shard, scope (at most 80), uuid, ".json"


def default_max_bytes(environ: Mapping[str, str] | None = None) -> int:
    """1/32 of the Lambda's memory (16 MiB at 512 MB), between 1 MiB and 64 MiB; 64 MiB elsewhere."""
    raw = (os.environ if environ is None else environ).get(ENV_LAMBDA_MEMORY, "")
    try:
        megabytes = int(raw)
    except ValueError:
        return DEFAULT_MAX_BYTES
    if megabytes <= 0:
        return DEFAULT_MAX_BYTES
    return max(_MIN_MAX_BYTES, min(DEFAULT_MAX_BYTES, megabytes * 1024 * 1024 // _MEMORY_SHARE))


def bucket_name(raw: str) -> str:
    name = raw.strip()
    if not (_BUCKET_NAME.match(name) or name.startswith("arn:")):
        raise ValueError("not an S3 bucket name (3-63 of a-z, 0-9, '.', '-') or access point ARN")
    return name


def key_prefix(raw: str) -> str:
    prefix = raw.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # "payloads" means the folder payloads/, not keys starting "payloadsexec..."
    if any(part in ("", ".", "..") for part in prefix.split("/")[:-1]):
        raise ValueError("must not contain empty, '.' or '..' path segments")
    if len(prefix.encode("utf-8")) + _KEY_ROOM > _KEY_LIMIT:
        raise ValueError(f"too long: keys would pass S3's {_KEY_LIMIT}-byte limit")
    return prefix


def positive_int(raw: str | int) -> int:
    value = int(raw.strip()) if isinstance(raw, str) else raw
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def setting(explicit: object, argument: str, variable: str | None, parse: Callable[[str], T], default: T) -> T:
    """An explicit argument (checked, error naming the argument) or the variable (error naming it)."""
    if explicit is not None:
        try:
            return parse(explicit)  # type: ignore[arg-type]  # parse checks the type itself
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"S3Offload({argument}={explicit!r}) is not valid: {exc}") from exc
    if variable is None:
        return default
    return resolve_setting(None, variable, parse, default)
