"""The pointer format, the keys pointers name, and the rules a pointer must pass to be read.

A pointer replaces an offloaded JSON value in a payload::

    {"sfn_workers_s3": {"v": 1, "bucket": "...", "key": "<prefix><shard>/<scope>/<uuid>.json",
                        "bytes": N, "sha256": "<hex>", "encoding": "json" | "json+gzip"}}

``bytes`` and ``sha256`` describe the stored object exactly as S3 holds it (after gzip, when the
encoding says so), so a reader checks both before it decodes anything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sfn_workers.errors import PayloadPointerError

__all__ = [
    "ENCODING_GZIP",
    "ENCODING_JSON",
    "MARKER",
    "POINTER_FIELD",
    "POINTER_VERSION",
    "Pointer",
    "check_pointer",
    "find_pointers",
    "largest_key",
    "new_key",
    "replace_pointers",
    "safe_scope",
]

#: The one key of a pointer object.
POINTER_FIELD = "sfn_workers_s3"
POINTER_VERSION = 1
ENCODING_JSON = "json"
ENCODING_GZIP = "json+gzip"
#: The bytes that betray a pointer inside an offloaded document's JSON text.
MARKER = b'"' + POINTER_FIELD.encode() + b'"'

# Scope (execution name or request id) in keys: Step Functions names are at most 80 characters.
_MAX_SCOPE = 80
_SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset({"v", "bucket", "key", "bytes", "sha256", "encoding"})


@dataclass(frozen=True, slots=True)
class Pointer:
    """Where an offloaded JSON value is, and how to check it (``bytes``/``sha256`` of the stored object)."""

    bucket: str
    key: str
    bytes: int
    sha256: str
    encoding: str

    def to_json(self) -> dict[str, Any]:
        """The pointer object that replaces the value in a payload."""
        return {
            POINTER_FIELD: {
                "v": POINTER_VERSION,
                "bucket": self.bucket,
                "key": self.key,
                "bytes": self.bytes,
                "sha256": self.sha256,
                "encoding": self.encoding,
            }
        }

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> Pointer:
        """Read a pointer object; :class:`PayloadPointerError` ("malformed pointer") if it is not one."""
        if len(node) != 1:
            others = sorted(k for k in node if k != POINTER_FIELD)
            raise PayloadPointerError(
                f"malformed pointer: {POINTER_FIELD!r} must be alone in its object, not with {others}"
            )
        body = node[POINTER_FIELD]
        if not isinstance(body, Mapping):
            raise PayloadPointerError(f"malformed pointer: {POINTER_FIELD} must be an object")
        if set(body) != _FIELDS:
            missing, extra = sorted(_FIELDS - set(body)), sorted(set(body) - _FIELDS)
            raise PayloadPointerError(f"malformed pointer: missing fields {missing}, unknown fields {extra}")
        if body["v"] != POINTER_VERSION or isinstance(body["v"], bool):
            raise PayloadPointerError(f"malformed pointer: version {body['v']!r} is not supported (only 1)")
        bucket, key, size, digest, encoding = (body[k] for k in ("bucket", "key", "bytes", "sha256", "encoding"))
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise PayloadPointerError("malformed pointer: bucket and key must be non-empty strings")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PayloadPointerError(f"malformed pointer: bytes must be a non-negative integer, not {size!r}")
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise PayloadPointerError("malformed pointer: sha256 must be 64 lowercase hex digits")
        if encoding not in (ENCODING_JSON, ENCODING_GZIP):
            raise PayloadPointerError(f"malformed pointer: encoding {encoding!r} is not 'json' or 'json+gzip'")
        return cls(bucket, key, size, digest, encoding)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# -- keys --------------------------------------------------------------------------------------


def safe_scope(scope: str | None) -> str:
    """The scope as a key segment: unsafe characters become ``_``, at most 80 characters."""
    cleaned = _SCOPE_UNSAFE.sub("_", scope or "")[:_MAX_SCOPE]
    return cleaned if cleaned.strip(".") else "local"


def new_key(prefix: str, scope: str) -> str:
    """``<prefix><shard>/<scope>/<uuid>.json``: two hex digits of the UUID spread writes over 256 prefixes.

    S3 scales request rates per prefix; one busy execution (a large Map) would otherwise write
    every object under one prefix. ``scope`` must already be safe (:func:`safe_scope`).
    """
    name = uuid.uuid4()
    return f"{prefix}{name.hex[:2]}/{scope}/{name}.json"


def largest_key(prefix: str) -> str:
    """The longest key :func:`new_key` can make under ``prefix`` (for size accounting)."""
    return f"{prefix}ff/{'s' * _MAX_SCOPE}/{uuid.UUID(int=0)}.json"


# -- the rules ---------------------------------------------------------------------------------


def check_pointer(pointer: Pointer, bucket: str | None, prefix: str, env_bucket: str) -> None:
    """The rules a pointer must pass before anything is read (bucket, prefix, no path escapes).

    The configured prefix is the rule, whatever lies under it: keys written before the shard was
    added (``<prefix><scope>/<uuid>.json``) are accepted as well.
    """
    if bucket is None:
        raise PayloadPointerError(
            f"pointer to {pointer} refused: no bucket is configured ({env_bucket} is unset), so none is allowed"
        )
    if pointer.bucket != bucket:
        raise PayloadPointerError(
            f"pointer to {pointer} refused: bucket {pointer.bucket!r} is not allowed (only {bucket!r})"
        )
    if not pointer.key.startswith(prefix):
        raise PayloadPointerError(f"pointer to {pointer} refused: prefix not allowed (keys must start {prefix!r})")
    if any(part in ("", ".", "..") for part in pointer.key[len(prefix) :].split("/")) or "\\" in pointer.key:
        raise PayloadPointerError(
            f"pointer to {pointer} refused: key escapes the prefix {prefix!r} ('..', '.' or empty segments)"
        )


# -- finding and replacing ---------------------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, type(None)})


def find_pointers(node: Any, found: list[tuple[int, Pointer]]) -> None:
    """Collect every occurrence of a pointer object under ``node``, with its identity (malformed ones raise).

    An object that appears twice (the same dict in two places) is two occurrences.
    """
    if isinstance(node, dict):
        if POINTER_FIELD in node:
            found.append((id(node), Pointer.parse(node)))
            return
        children: Iterable[Any] = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        # Every invocation walks its input: an exact-type set lookup skips the scalars (most
        # values) about twice as fast as isinstance would; anything else is looked into.
        if type(child) not in _SCALARS:
            find_pointers(child, found)


def replace_pointers(node: Any, values: dict[int, Any]) -> Any:
    """A copy of ``node`` with the pointer objects (by identity) replaced; untouched parts are shared."""
    if id(node) in values:
        return values[id(node)]
    if isinstance(node, dict):
        changed = {k: replace_pointers(v, values) for k, v in node.items() if isinstance(v, (dict, list))}
        changed = {k: v for k, v in changed.items() if v is not node[k]}
        return {**node, **changed} if changed else node
    if isinstance(node, list):
        replaced = [replace_pointers(v, values) if isinstance(v, (dict, list)) else v for v in node]
        return replaced if any(a is not b for a, b in zip(replaced, node, strict=True)) else node
    return node
