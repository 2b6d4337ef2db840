"""S3 payload offloading: large outputs leave as S3 pointers, pointers in inputs come back as values.

Step Functions fails a whole execution (``States.DataLimitExceeded``, which no ``Catch`` handles)
when a state's payload passes 262,144 UTF-8 bytes of JSON. :class:`S3Offload` keeps a task's result
under ``threshold_bytes`` by moving the largest top-level fields to S3 one by one (fields named in
``keep`` never move), and the whole document only when that is not enough. What travels instead is
a pointer::

    {"sfn_workers_s3": {"v": 1, "bucket": "...", "key": "<prefix><scope>/<uuid>.json",
                        "bytes": N, "sha256": "<hex>", "encoding": "json" | "json+gzip"}}

``bytes`` and ``sha256`` describe the stored object exactly as S3 holds it (after gzip, when the
encoding says so), so a reader checks both before it decodes anything.

Cost discipline: the output's JSON text is made once, by the pipeline (``Output.text``). A small
output costs one length check here. A large one is cut into top-level fields by slicing that text,
so the field that makes it large is not serialised a second time (:func:`field_texts`).
"""

from __future__ import annotations

import base64
import contextvars
import functools
import hashlib
import itertools
import json
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sfn_workers import _log
from sfn_workers._aws import Clients, default_clients
from sfn_workers.config import (
    DEFAULT_PREFIX,
    DEFAULT_THRESHOLD_BYTES,
    ENV_BUCKET,
    ENV_PREFIX,
    ENV_THRESHOLD_BYTES,
    STATES_PAYLOAD_LIMIT,
    resolve_setting,
)
from sfn_workers.context import current_context
from sfn_workers.errors import (
    ConfigurationError,
    OffloadError,
    OutputValidationError,
    PayloadPointerError,
    RetryBudgetExhausted,
    aws_error_code,
    is_missing_object,
)
from sfn_workers.models import Output, json_text
from sfn_workers.retry import RetryPolicy

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENCODING_GZIP",
    "ENCODING_JSON",
    "POINTER_FIELD",
    "Plan",
    "Pointer",
    "S3Offload",
    "field_texts",
    "plan_offload",
    "utf8_len",
]

#: The one key of a pointer object.
POINTER_FIELD = "sfn_workers_s3"
POINTER_VERSION = 1
ENCODING_JSON = "json"
ENCODING_GZIP = "json+gzip"
#: Objects larger than this are refused when resolving (64 MiB: safe for a 512 MB Lambda).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# Scope (execution name or request id) in keys: Step Functions names are at most 80 characters.
_MAX_SCOPE = 80
_SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_KEY_LIMIT = 1024  # S3's limit on a key, in UTF-8 bytes
_KEY_TAIL = "/00000000-0000-0000-0000-000000000000.json"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# gzip level 2: on order-like JSON about 80% of level 6's saving at a third of its CPU (bench/README.md).
_GZIP_LEVEL = 2
_GZIP_MIN = 1024  # below this, gzip's header and the CPU rarely pay
_GZIP_WBITS = 31  # zlib's gzip container
_MARKER = b'"' + POINTER_FIELD.encode() + b'"'
_MAX_NESTING = 4  # pointers inside offloaded documents, inside offloaded documents...

T = TypeVar("T")


# -- size accounting (pure) --------------------------------------------------------------------


def utf8_len(text: str) -> int:
    """UTF-8 bytes of ``text`` (what the Step Functions limit counts); O(1) for ASCII text."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _weight(value: Any, depth: int = 2) -> int:
    # A cheap guess of a value's JSON length, to pick the field worth slicing instead of
    # serialising. Wrong guesses cost time, never correctness.
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, (list, dict)):
        if not value:
            return 2
        if depth == 0:
            return 16 * len(value)
        sample = list(itertools.islice(value.values(), 3)) if isinstance(value, dict) else value[:3]
        per_item = sum(_weight(v, depth - 1) for v in sample) / len(sample)
        return int(len(value) * (per_item + 1))
    return 8


def field_texts(value: Mapping[str, Any], text: str) -> list[str] | None:
    """The JSON text of each top-level field value of ``value``, cut out of ``text``.

    ``text`` must be ``json_text(value)``. Every value but the one that looks largest is
    serialised (small, cheap); the largest is sliced from ``text`` at the position the others'
    lengths give, so it is never serialised again. Returns None when the slice does not line up
    (keys that are not strings, a text made otherwise); callers then serialise every field.
    """
    items = list(value.items())
    if not items:
        return []
    if not all(isinstance(name, str) for name, _ in items):
        return None
    largest = max(range(len(items)), key=lambda i: _weight(items[i][1]))
    names = [json_text(name) for name, _ in items]
    texts: list[str] = [json_text(v) if i != largest else "" for i, (_, v) in enumerate(items)]
    # text = "{" + ",".join(name + ":" + value) + "}": everything but the largest value is known.
    known = 2 + (len(items) - 1) + sum(len(n) + 1 for n in names) + sum(len(t) for t in texts)
    size = len(text) - known
    start = 1 + sum(len(names[i]) + 1 + len(texts[i]) + 1 for i in range(largest)) + len(names[largest]) + 1
    end = start + size
    if size <= 0 or text[start - len(names[largest]) - 1 : start] != names[largest] + ":" or end >= len(text):
        return None
    if text[end] != ("}" if largest == len(items) - 1 else ","):
        return None
    ends = _ENDS.get(type(items[largest][1]))
    if ends is not None and (text[start] != ends[0] or text[end - 1] != ends[1]):
        return None  # not compact JSON after all (whitespace, another serialiser)
    texts[largest] = text[start:end]
    return texts


_ENDS: dict[type[Any], str] = {dict: "{}", list: "[]", str: '""'}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to move to S3: the indexes of top-level fields, or the whole document."""

    fields: tuple[int, ...] = ()
    whole: bool = False


INLINE = Plan()


def plan_offload(
    total: int,
    fields: Sequence[tuple[str, int]],
    keep: frozenset[str],
    threshold: int,
    pointer_bytes: int,
    always: bool = False,
) -> Plan:
    """Choose what leaves the document so that it is at most ``threshold`` bytes.

    ``total`` is the document's size, ``fields`` its top-level ``(name, value size)`` pairs (empty
    for a document that is not an object), ``pointer_bytes`` an upper bound on a pointer's size.
    Moving a field changes the size by ``pointer_bytes - size``, so fields are moved largest first
    and never when they are smaller than their pointer. Kept fields never move: when they alone
    keep the document too large, :class:`OffloadError` says so rather than hiding them (a Choice
    state reading ``$.inStock`` from a whole-document pointer would fail the execution).
    """
    kept = [name for name, _ in fields if name in keep]
    if not always and total <= threshold:
        return INLINE
    if not fields or (always and not kept):
        return Plan(whole=True)
    movable = sorted((i for i, (name, _) in enumerate(fields) if name not in keep), key=lambda i: -fields[i][1])
    size = total
    moved: list[int] = []
    for i in movable:
        if not always and (size <= threshold or fields[i][1] <= pointer_bytes):
            break  # fits already, or no smaller field can help
        moved.append(i)
        size += pointer_bytes - fields[i][1]
    if size <= threshold:
        return Plan(fields=tuple(moved))
    if not kept:
        return Plan(whole=True)
    raise OffloadError(
        f"the output is still about {size} bytes with every other field offloaded, over threshold_bytes="
        f"{threshold}, because of the fields kept inline ({', '.join(kept)}); keep fewer or smaller fields"
    )


# -- pointers ----------------------------------------------------------------------------------


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
        expected = {"v", "bucket", "key", "bytes", "sha256", "encoding"}
        if set(body) != expected:
            missing, extra = sorted(expected - set(body)), sorted(set(body) - expected)
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


# -- settings ----------------------------------------------------------------------------------


def _bucket(raw: str) -> str:
    name = raw.strip()
    if not (_BUCKET_NAME.match(name) or name.startswith("arn:")):
        raise ValueError("not an S3 bucket name (3-63 of a-z, 0-9, '.', '-') or access point ARN")
    return name


def _prefix(raw: str) -> str:
    prefix = raw.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # "payloads" means the folder payloads/, not keys starting "payloadsexec..."
    if any(part in ("", ".", "..") for part in prefix.split("/")[:-1]):
        raise ValueError("must not contain empty, '.' or '..' path segments")
    if len(prefix.encode("utf-8")) + _MAX_SCOPE + len(_KEY_TAIL) > _KEY_LIMIT:
        raise ValueError(f"too long: keys would pass S3's {_KEY_LIMIT}-byte limit")
    return prefix


def _positive_int(raw: str | int) -> int:
    value = int(raw.strip()) if isinstance(raw, str) else raw
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _setting(explicit: Any, argument: str, variable: str | None, parse: Callable[[Any], T], default: T) -> T:
    """An explicit argument (checked, error naming the argument) or the variable (error naming it)."""
    if explicit is not None:
        try:
            return parse(explicit)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"S3Offload({argument}={explicit!r}) is not valid: {exc}") from exc
    if variable is None:
        return default
    return resolve_setting(None, variable, parse, default)


def _safe_scope(scope: str | None) -> str:
    cleaned = _SCOPE_UNSAFE.sub("_", scope or "")[:_MAX_SCOPE]
    return cleaned if cleaned.strip(".") else "local"


# -- the offloader -----------------------------------------------------------------------------


class S3Offload:
    """Where and when large payloads go to S3, and which pointers may be read back.

    Args:
        bucket: the bucket to write to and the only one pointers may name (``SFN_WORKERS_BUCKET``).
            Without one, outputs that fit stay inline, a larger output raises :class:`OffloadError`
            and a pointer in the input raises :class:`PayloadPointerError`.
        prefix: keys are ``<prefix><execution or request id>/<uuid>.json``; pointers must be
            under it (``SFN_WORKERS_PREFIX``, default ``sfn-workers/``; a missing ``/`` is added).
        threshold_bytes: the largest output that travels inline, in UTF-8 bytes of compact JSON
            (``SFN_WORKERS_THRESHOLD_BYTES``, default 65,536; at most 262,144, at least a pointer).
        keep: top-level fields that always stay inline (what Choice states and inline Maps read).
        always: offload even small outputs: only ``keep`` fields travel through Step Functions.
        compress: gzip objects when that makes them smaller (``encoding: "json+gzip"``).
        max_bytes: pointers to objects larger than this, stored or decoded, are refused.
        retry_policy: how S3 calls are retried (default: 3 attempts, jittered, within the
            Lambda's deadline).
    """

    def __init__(
        self,
        bucket: str | None = None,
        prefix: str | None = None,
        threshold_bytes: int | None = None,
        keep: Iterable[str] = (),
        always: bool = False,
        compress: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.bucket: str | None = _setting(bucket, "bucket", ENV_BUCKET, _bucket, None)
        self.prefix: str = _setting(prefix, "prefix", ENV_PREFIX, _prefix, DEFAULT_PREFIX)
        self.threshold_bytes: int = _setting(
            threshold_bytes, "threshold_bytes", ENV_THRESHOLD_BYTES, _positive_int, DEFAULT_THRESHOLD_BYTES
        )
        if isinstance(keep, str):
            keep = (keep,)  # keep="orderId" means the field, not its letters
        self.keep: tuple[str, ...] = tuple(keep)
        if not all(isinstance(name, str) for name in self.keep):
            raise ConfigurationError(f"S3Offload(keep={self.keep!r}): field names must be strings")
        self._keep = frozenset(self.keep)
        self.always = bool(always)
        self.compress = bool(compress)
        self.max_bytes: int = _setting(max_bytes, "max_bytes", None, _positive_int, DEFAULT_MAX_BYTES)
        self.retry_policy = retry_policy or RetryPolicy(attempts=3, base=0.1, cap=2.0)
        # The largest pointer this configuration can write: planning counts with it, and a
        # threshold below it could never be met.
        self.pointer_bytes = utf8_len(
            json_text(
                Pointer(
                    self.bucket or "b" * 63,
                    self.prefix + "s" * _MAX_SCOPE + _KEY_TAIL,
                    10**15,
                    "0" * 64,
                    ENCODING_GZIP,
                ).to_json()
            )
        )
        if not self.pointer_bytes <= self.threshold_bytes <= STATES_PAYLOAD_LIMIT:
            source = "threshold_bytes" if threshold_bytes is not None else ENV_THRESHOLD_BYTES
            raise ConfigurationError(
                f"{source}={self.threshold_bytes} must be between {self.pointer_bytes} (a pointer's "
                f"size with this bucket and prefix) and {STATES_PAYLOAD_LIMIT} (the Step Functions payload limit)"
            )
        self._logger: Any = None

    def __repr__(self) -> str:
        return (
            f"S3Offload(bucket={self.bucket!r}, prefix={self.prefix!r}, threshold_bytes={self.threshold_bytes}, "
            f"keep={list(self.keep)!r}, always={self.always}, compress={self.compress}, max_bytes={self.max_bytes})"
        )

    # -- output ------------------------------------------------------------------------------

    def offload(self, output: Output, clients: Clients, scope: str) -> Output:
        """``output`` with large parts replaced by pointers, at most ``threshold_bytes`` in size."""
        text = output.text
        # UTF-8 bytes are at least the characters: a text of more characters than the threshold is
        # over it without being encoded, and one of fewer is cheap to measure.
        if not self.always and len(text) <= self.threshold_bytes and utf8_len(text) <= self.threshold_bytes:
            return output  # the hot path: a length check, no client, no copy
        value = output.value
        if not (isinstance(value, dict) and value):
            body = text.encode("utf-8")
            plan = plan_offload(len(body), [], self._keep, self.threshold_bytes, self.pointer_bytes, self.always)
            if plan == INLINE:
                return output
            self._need_bucket(len(body))
            pointer = self._write(clients, body, _safe_scope(scope), "(whole output)")
            self._count_written([pointer])
            return Output.of(pointer.to_json())
        texts = field_texts(value, text)
        if texts is None:  # keys that are not strings: let json decide what they become
            value = json.loads(text)
            texts = [json_text(v) for v in value.values()]
        names = list(value)
        # Each field is encoded once: its length is its size, and the bytes are what is uploaded.
        bodies = [t.encode("utf-8") for t in texts]
        total = 1 + sum(utf8_len(json_text(name)) + 2 + len(b) for name, b in zip(names, bodies, strict=True))
        sizes = [(name, len(b)) for name, b in zip(names, bodies, strict=True)]
        plan = plan_offload(total, sizes, self._keep, self.threshold_bytes, self.pointer_bytes, self.always)
        if plan == INLINE:
            return output
        self._need_bucket(total)
        safe_scope = _safe_scope(scope)
        if plan.whole:
            pointer = self._write(clients, text.encode("utf-8"), safe_scope, "(whole output)")
            self._count_written([pointer])
            return Output.of(pointer.to_json())
        moved = [bodies[i] for i in plan.fields]
        pointers = self._write_many(clients, moved, safe_scope, [names[i] for i in plan.fields])
        replaced = dict(zip(plan.fields, pointers, strict=True))
        new_value: dict[str, Any] = {}
        parts: list[str] = []
        for i, name in enumerate(names):
            if i in replaced:
                pointer_json = replaced[i].to_json()
                new_value[name] = pointer_json
                parts.append(f"{json_text(name)}:{json_text(pointer_json)}")
            else:
                new_value[name] = value[name]
                parts.append(f"{json_text(name)}:{texts[i]}")
        self._count_written(pointers)
        # The new text is spliced from pieces already made: exactly json_text(new_value).
        return Output(new_value, "{" + ",".join(parts) + "}")

    def _need_bucket(self, total: int) -> None:
        if self.bucket is not None:
            return
        if self.always:
            why = "always=True offloads every output"
        else:
            why = f"the output is {total} bytes, over threshold_bytes={self.threshold_bytes}"
        raise OffloadError(
            f"{why}, but no bucket is configured ({ENV_BUCKET} is unset): set it or pass S3Offload(bucket=...)"
        )

    def write_items(
        self, items: Iterable[Any], clients: Clients | None = None, scope: str | None = None
    ) -> dict[str, str]:
        """Write ``items`` as one JSON array for a Distributed Map's ``ItemReader``.

        Returns ``{"Bucket": ..., "Key": ...}``: put it in the output and point the Map's
        ``ItemReader`` (``arn:aws:states:::s3:getObject``, ``ReaderConfig: {"InputType": "JSON"}``)
        at it. The object is plain JSON (no gzip), since the ItemReader reads it as it is.
        ``scope`` defaults to the running task's execution name or request id.
        """
        if self.bucket is None:
            raise OffloadError(f"write_items needs a bucket: set {ENV_BUCKET} or pass S3Offload(bucket=...)")
        try:
            body = json_text(list(items)).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise OutputValidationError(f"items are not JSON: {exc}") from exc
        if scope is None:
            ctx = current_context()
            scope = (ctx.execution or ctx.request_id) if ctx is not None else None
        key = self._new_key(_safe_scope(scope))
        self._put(clients or default_clients(), key, body, None)
        self._debug("items written", bucket=self.bucket, key=key, bytes=len(body))
        self._emit([len(body)], "OffloadedItemsBytes", "OffloadedItemsObjects")
        return {"Bucket": self.bucket, "Key": key}

    def _write_many(self, clients: Clients, bodies: list[bytes], scope: str, names: list[str]) -> list[Pointer]:
        jobs = [
            functools.partial(self._write, clients, body, scope, name) for body, name in zip(bodies, names, strict=True)
        ]
        return _concurrently(jobs)

    def _write(self, clients: Clients, body: bytes, scope: str, what: str) -> Pointer:
        encoding = ENCODING_JSON
        stored = body
        if self.compress and len(body) >= _GZIP_MIN:
            packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            packed = packer.compress(body) + packer.flush()
            if len(packed) < len(body):
                stored, encoding = packed, ENCODING_GZIP
        key = self._new_key(scope)
        digest = self._put(clients, key, stored, "gzip" if encoding == ENCODING_GZIP else None)
        assert self.bucket is not None  # checked by the callers
        pointer = Pointer(self.bucket, key, len(stored), digest.hex(), encoding)
        self._debug(
            "payload offloaded",
            field=what,
            bucket=pointer.bucket,
            key=pointer.key,
            json_bytes=len(body),
            stored_bytes=pointer.bytes,
            encoding=encoding,
        )
        return pointer

    def _new_key(self, scope: str) -> str:
        return f"{self.prefix}{scope}/{uuid.uuid4()}.json"

    def _put(self, clients: Clients, key: str, stored: bytes, content_encoding: str | None) -> bytes:
        """PUT with S3 checking our SHA-256 of the bytes (so botocore need not hash them again)."""
        digest = hashlib.sha256(stored).digest()
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        s3 = clients.get("s3")
        try:
            self.retry_policy.call(
                s3.put_object,
                Bucket=self.bucket,
                Key=key,
                Body=stored,
                ContentType="application/json",
                ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                **extra,
            )
        except Exception as exc:
            if not _is_aws_failure(exc):
                raise
            raise OffloadError(f"could not write s3://{self.bucket}/{key}: {_reason(exc)}") from exc
        return digest

    def _count_written(self, pointers: list[Pointer]) -> None:
        self._emit([p.bytes for p in pointers], "OffloadedBytes", "OffloadedPointers")

    # -- input -------------------------------------------------------------------------------

    def resolve(self, payload: Any, clients: Clients) -> Any:
        """``payload`` with every pointer, at any depth, replaced by its value (the input is not mutated).

        All pointers are checked against the rules before any is fetched; several are fetched
        concurrently. Refusals raise :class:`PayloadPointerError` naming the rule.
        """
        return self._resolve(payload, clients, 0)

    def _resolve(self, payload: Any, clients: Clients, nesting: int) -> Any:
        if not isinstance(payload, (dict, list)):
            return payload
        found: dict[int, Pointer] = {}
        _find_pointers(payload, found)
        if not found:
            return payload
        if nesting >= _MAX_NESTING:
            raise PayloadPointerError(f"pointers nested more than {_MAX_NESTING} deep")
        for pointer in found.values():
            self._check(pointer)
        ids = list(found)
        values = _concurrently([functools.partial(self._read, clients, found[i], nesting) for i in ids])
        self._emit([p.bytes for p in found.values()], "ResolvedBytes", "ResolvedPointers")
        return _replace(payload, dict(zip(ids, values, strict=True)))

    def _check(self, pointer: Pointer) -> None:
        """The rules a pointer must pass before anything is read."""
        if self.bucket is None:
            raise PayloadPointerError(
                f"pointer to {pointer} refused: no bucket is configured ({ENV_BUCKET} is unset), so none is allowed"
            )
        if pointer.bucket != self.bucket:
            raise PayloadPointerError(
                f"pointer to {pointer} refused: bucket {pointer.bucket!r} is not allowed (only {self.bucket!r})"
            )
        if not pointer.key.startswith(self.prefix):
            raise PayloadPointerError(
                f"pointer to {pointer} refused: prefix not allowed (keys must start {self.prefix!r})"
            )
        if any(part in ("", ".", "..") for part in pointer.key[len(self.prefix) :].split("/")) or "\\" in pointer.key:
            raise PayloadPointerError(
                f"pointer to {pointer} refused: key escapes the prefix {self.prefix!r} ('..', '.' or empty segments)"
            )
        if pointer.bytes > self.max_bytes:
            raise PayloadPointerError(
                f"pointer to {pointer} refused: {pointer.bytes} bytes is over max_bytes={self.max_bytes}"
            )

    def _read(self, clients: Clients, pointer: Pointer, nesting: int) -> Any:
        s3 = clients.get("s3")
        try:
            response = self.retry_policy.call(s3.get_object, Bucket=pointer.bucket, Key=pointer.key)
            length = response.get("ContentLength")
            if length is not None and length != pointer.bytes:
                response["Body"].close()
                raise PayloadPointerError(
                    f"pointer to {pointer} refused: size mismatch (object is {length} bytes, pointer says "
                    f"{pointer.bytes})"
                )
            stored = response["Body"].read(pointer.bytes + 1)
            response["Body"].close()
        except PayloadPointerError:
            raise
        except Exception as exc:
            if not _is_aws_failure(exc):
                raise
            if is_missing_object(exc):
                raise PayloadPointerError(f"pointer to {pointer} refused: missing object ({_reason(exc)})") from exc
            raise OffloadError(f"could not read {pointer}: {_reason(exc)}") from exc
        if len(stored) != pointer.bytes:
            raise PayloadPointerError(
                f"pointer to {pointer} refused: size mismatch (read {len(stored)} bytes, pointer says {pointer.bytes})"
            )
        if hashlib.sha256(stored).hexdigest() != pointer.sha256:
            raise PayloadPointerError(f"pointer to {pointer} refused: sha256 mismatch (the object was changed)")
        raw = self._decode(pointer, stored)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise PayloadPointerError(f"pointer to {pointer} refused: the object is not JSON ({exc})") from exc
        self._debug("pointer resolved", bucket=pointer.bucket, key=pointer.key, stored_bytes=pointer.bytes)
        if _MARKER in raw:  # an offloaded document that itself holds pointers
            value = self._resolve(value, clients, nesting + 1)
        return value

    def _decode(self, pointer: Pointer, stored: bytes) -> bytes:
        if pointer.encoding == ENCODING_JSON:
            return stored
        unpacker = zlib.decompressobj(_GZIP_WBITS)
        try:
            raw = unpacker.decompress(stored, self.max_bytes + 1)
        except zlib.error as exc:
            raise PayloadPointerError(f"pointer to {pointer} refused: the object is not gzip ({exc})") from exc
        if len(raw) > self.max_bytes:
            raise PayloadPointerError(f"pointer to {pointer} refused: decoded size is over max_bytes={self.max_bytes}")
        if not unpacker.eof or unpacker.unused_data:
            raise PayloadPointerError(f"pointer to {pointer} refused: the object is not one complete gzip stream")
        return raw

    # -- telemetry ---------------------------------------------------------------------------

    def _debug(self, message: str, **fields: Any) -> None:
        if self._logger is None:
            self._logger = _log.get_logger()
        self._logger.debug(message, extra=fields)

    @staticmethod
    def _emit(sizes: list[int], bytes_metric: str, count_metric: str) -> None:
        from sfn_workers import _metrics

        _metrics.emit(bytes_metric, sum(sizes), "Bytes")
        _metrics.emit(count_metric, len(sizes), "Count")


# -- helpers -----------------------------------------------------------------------------------


def _find_pointers(node: Any, found: dict[int, Pointer]) -> None:
    """Collect every pointer object under ``node`` by identity (malformed ones raise)."""
    if isinstance(node, dict):
        if POINTER_FIELD in node:
            found[id(node)] = Pointer.parse(node)
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
            _find_pointers(child, found)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _replace(node: Any, values: dict[int, Any]) -> Any:
    """A copy of ``node`` with the pointer objects (by identity) replaced; untouched parts are shared."""
    if id(node) in values:
        return values[id(node)]
    if isinstance(node, dict):
        changed = {k: _replace(v, values) for k, v in node.items() if isinstance(v, (dict, list))}
        changed = {k: v for k, v in changed.items() if v is not node[k]}
        return {**node, **changed} if changed else node
    if isinstance(node, list):
        replaced = [_replace(v, values) if isinstance(v, (dict, list)) else v for v in node]
        return replaced if any(a is not b for a, b in zip(replaced, node, strict=True)) else node
    return node


def _concurrently(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run the jobs (S3 calls, mostly waiting) on up to 8 threads; results in order, first error raised.

    Each job runs in a copy of the caller's context, so that retries still see the task's deadline.
    """
    if len(jobs) == 1:
        return [jobs[0]()]
    from concurrent.futures import ThreadPoolExecutor  # only when several objects move

    contexts = [contextvars.copy_context() for _ in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), 8), thread_name_prefix="sfn-workers-s3") as pool:
        return list(pool.map(lambda ctx, job: ctx.run(job), contexts, jobs))


def _is_aws_failure(exc: BaseException) -> bool:
    """botocore's errors (service answers, connection failures) or an empty retry budget."""
    if isinstance(exc, RetryBudgetExhausted):
        return True
    return any(cls.__module__ == "botocore.exceptions" for cls in type(exc).__mro__)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RetryBudgetExhausted) and exc.__cause__ is not None:
        return f"{_reason(exc.__cause__)} (retry budget exhausted)"
    code = aws_error_code(exc)
    return f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
