""":class:`S3Offload`: where and when large payloads go to S3, and which pointers may be read back.

The output side plans (:mod:`~sfn_workers.offload.planning`), writes (:mod:`._s3io`) and splices
pointers (:mod:`~sfn_workers.offload.pointers`) into the text the pipeline already made; the input
side hands each input to a :class:`~sfn_workers.offload.resolver.Resolution`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sfn_workers import _log
from sfn_workers._limits import PAYLOAD_MAX_BYTES
from sfn_workers.config import DEFAULT_PREFIX, DEFAULT_THRESHOLD_BYTES, ENV_BUCKET, ENV_PREFIX, ENV_THRESHOLD_BYTES
from sfn_workers.context import current_context
from sfn_workers.errors import ConfigurationError, OffloadError, OutputValidationError
from sfn_workers.models import Output, json_text
from sfn_workers.offload.options import bucket_name, default_max_bytes, key_prefix, positive_int, setting
from sfn_workers.offload.pointers import ENCODING_GZIP, Pointer, find_pointers, largest_key, new_key, safe_scope

if TYPE_CHECKING:
    from sfn_workers._aws import Clients
    from sfn_workers.offload.planning import Plan
    from sfn_workers.retries import RetryPolicy

# Every ``@task`` builds an S3Offload at decoration, and most invocations neither write nor read S3:
# the planning, the S3 I/O, the resolver, the retry policy and the clients load on first use.

__all__ = ["S3Offload"]


class S3Offload:
    """Where and when large payloads go to S3, and which pointers may be read back.

    Args:
        bucket: the bucket to write to and the only one pointers may name (``SFN_WORKERS_BUCKET``).
            Without one, outputs that fit stay inline, a larger output raises :class:`OffloadError`
            and a pointer in the input raises :class:`PayloadPointerError`.
        prefix: keys are ``<prefix><shard>/<execution or request id>/<uuid>.json``; pointers must
            be under it (``SFN_WORKERS_PREFIX``, default ``sfn-workers/``; a missing ``/`` is added).
        threshold_bytes: the output size to stay under, in UTF-8 bytes of compact JSON
            (``SFN_WORKERS_THRESHOLD_BYTES``, default 65,536; at most 262,144, at least a pointer).
        keep: top-level fields that always stay inline (what Choice states and inline Maps read).
        always: offload even small outputs: only ``keep`` fields travel through Step Functions.
        compress: gzip objects when that makes them smaller (``encoding: "json+gzip"``).
        max_bytes: the total decoded bytes all pointers of one input may resolve to (default:
            1/32 of ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, between 1 and 64 MiB; 64 MiB outside Lambda).
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
        max_bytes: int | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.bucket: str | None = setting(bucket, "bucket", ENV_BUCKET, bucket_name, None)
        self.prefix: str = setting(prefix, "prefix", ENV_PREFIX, key_prefix, DEFAULT_PREFIX)
        self.threshold_bytes: int = setting(
            threshold_bytes, "threshold_bytes", ENV_THRESHOLD_BYTES, positive_int, DEFAULT_THRESHOLD_BYTES
        )
        if isinstance(keep, str):
            keep = (keep,)  # keep="orderId" means the field, not its letters
        self.keep: tuple[str, ...] = tuple(keep)
        if not all(isinstance(name, str) for name in self.keep):
            raise ConfigurationError(f"S3Offload(keep={self.keep!r}): field names must be strings")
        self._keep = frozenset(self.keep)
        self.always = bool(always)
        self.compress = bool(compress)
        self.max_bytes: int = setting(max_bytes, "max_bytes", None, positive_int, default_max_bytes())
        self._retry_policy = retry_policy
        # The largest pointer this configuration can write: planning counts with it, and a
        # threshold below it could never be met.
        biggest = Pointer(self.bucket or "b" * 63, largest_key(self.prefix), 10**15, "0" * 64, ENCODING_GZIP)
        self.pointer_bytes = len(json_text(biggest.to_json()).encode("utf-8"))
        if not self.pointer_bytes <= self.threshold_bytes <= PAYLOAD_MAX_BYTES:
            source = "threshold_bytes" if threshold_bytes is not None else ENV_THRESHOLD_BYTES
            raise ConfigurationError(
                f"{source}={self.threshold_bytes} must be between {self.pointer_bytes} (a pointer's "
                f"size with this bucket and prefix) and {PAYLOAD_MAX_BYTES} (the Step Functions payload limit)"
            )
        self._logger: Any = None

    def __repr__(self) -> str:
        return (
            f"S3Offload(bucket={self.bucket!r}, prefix={self.prefix!r}, threshold_bytes={self.threshold_bytes}, "
            f"keep={list(self.keep)!r}, always={self.always}, compress={self.compress}, max_bytes={self.max_bytes})"
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        """How S3 calls are retried; the default one is made when the first call needs it."""
        if self._retry_policy is None:
            from sfn_workers.retries import RetryPolicy

            self._retry_policy = RetryPolicy(attempts=3, base=0.1, cap=2.0)
        return self._retry_policy

    @retry_policy.setter
    def retry_policy(self, policy: RetryPolicy) -> None:
        self._retry_policy = policy

    # -- output ------------------------------------------------------------------------------

    def offload(self, output: Output, clients: Clients, scope: str) -> Output:
        """``output`` with large parts replaced by pointers, at most ``threshold_bytes`` in size.

        If one of several fields cannot be written, the objects already written are deleted
        (best effort) before the :class:`OffloadError` is raised.
        """
        from sfn_workers.offload.planning import INLINE, field_texts, plan_offload, utf8_len

        text = output.text
        # UTF-8 bytes are at least the characters: a text of more characters than the threshold is
        # over it without being encoded, and one of fewer is cheap to measure.
        if not self.always and len(text) <= self.threshold_bytes and utf8_len(text) <= self.threshold_bytes:
            return output  # the hot path: a length check, no client, no copy
        value = output.value
        if not (isinstance(value, dict) and value):
            body = text.encode("utf-8")
            plan = plan_offload(len(body), [], self._keep, self.threshold_bytes, self.pointer_bytes, self.always)
            return output if plan == INLINE else self._whole(clients, body, scope)
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
        if plan.whole:
            return self._whole(clients, text.encode("utf-8"), scope)
        if plan.over_threshold:
            self._warn_kept(plan)
        if not plan.fields:
            return output
        self._need_bucket(total)
        moved = [bodies[i] for i in plan.fields]
        pointers = self._write_many(clients, moved, safe_scope(scope), [names[i] for i in plan.fields])
        return _splice(value, names, texts, dict(zip(plan.fields, pointers, strict=True)))

    def _whole(self, clients: Clients, body: bytes, scope: str) -> Output:
        self._need_bucket(len(body))
        pointer = self._write(clients, body, safe_scope(scope), "(whole output)")
        self._count_written([pointer])
        return Output.of(pointer.to_json())

    def _warn_kept(self, plan: Plan) -> None:
        if self._logger is None:
            self._logger = _log.get_logger()
        self._logger.warning(
            "the fields kept inline hold the output over threshold_bytes; it travels inline, under "
            "Step Functions' limit",
            extra={"output_bytes_at_most": plan.over_threshold, "threshold_bytes": self.threshold_bytes},
        )

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
        from sfn_workers._aws import default_clients
        from sfn_workers.offload import _s3io

        key = new_key(self.prefix, safe_scope(scope))
        s3 = (clients or default_clients()).get("s3")
        _s3io.put(s3, self.retry_policy, self.bucket, key, body, None)
        self._debug("items written", bucket=self.bucket, key=key, bytes=len(body))
        self._emit([len(body)], "OffloadedItemsBytes", "OffloadedItemsObjects")
        return {"Bucket": self.bucket, "Key": key}

    def _write_many(self, clients: Clients, bodies: list[bytes], scope: str, names: list[str]) -> list[Pointer]:
        from sfn_workers.offload import _s3io

        jobs = [
            functools.partial(self._write, clients, body, scope, name) for body, name in zip(bodies, names, strict=True)
        ]
        results = _s3io.run_all(jobs)
        failures = [r for r in results if isinstance(r, Exception)]
        written = [r for r in results if isinstance(r, Pointer)]
        if failures:
            self._delete_written(clients, written)
            raise failures[0]
        self._count_written(written)
        return written

    def _delete_written(self, clients: Clients, written: list[Pointer]) -> None:
        """Objects of an output that will never travel: delete them rather than leave them to expiry."""
        if not written or self.bucket is None:
            return
        from sfn_workers.offload import _s3io

        problem = _s3io.delete_quietly(clients.get("s3"), self.bucket, [p.key for p in written])
        if problem is not None:
            if self._logger is None:
                self._logger = _log.get_logger()
            self._logger.warning(
                "objects of a failed offload could not be deleted; the bucket's expiry removes them",
                extra={"keys": [p.key for p in written], "reason": problem},
            )

    def _write(self, clients: Clients, body: bytes, scope: str, what: str) -> Pointer:
        assert self.bucket is not None  # checked by the callers
        from sfn_workers.offload import _s3io

        stored, encoding = _s3io.encode(body, self.compress)
        key = new_key(self.prefix, scope)
        digest = _s3io.put(clients.get("s3"), self.retry_policy, self.bucket, key, stored, encoding)
        pointer = Pointer(self.bucket, key, len(stored), digest, encoding)
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

    def _count_written(self, pointers: list[Pointer]) -> None:
        self._emit([p.bytes for p in pointers], "OffloadedBytes", "OffloadedPointers")

    # -- input -------------------------------------------------------------------------------

    def resolve(self, payload: Any, clients: Clients | None = None) -> Any:
        """``payload`` with every pointer, at any depth, replaced by its value (the input is not mutated).

        All pointers are checked against the rules before any is fetched; identical pointers are
        fetched once; several are fetched concurrently; their decoded bytes, each occurrence
        counted, are at most ``max_bytes`` in all. Refusals raise :class:`PayloadPointerError`
        naming the rule.
        """
        found: list[tuple[int, Pointer]] = []
        find_pointers(payload, found)
        if not found:
            return payload  # the hot path: one walk of the input, nothing else
        from sfn_workers._aws import default_clients
        from sfn_workers.offload.resolver import ReadRules, Resolution

        source = clients or default_clients()
        rules = ReadRules(self.bucket, self.prefix, self.max_bytes, self.retry_policy, ENV_BUCKET)
        resolution = Resolution(rules, lambda: source.get("s3"), self._debug)
        resolved = resolution.resolve(payload, found=found)
        if resolution.fetched:
            self._emit([resolution.stored_bytes], "ResolvedBytes", "ResolvedPointers", count=resolution.fetched)
        return resolved

    # -- telemetry ---------------------------------------------------------------------------

    def _debug(self, message: str, **fields: Any) -> None:
        if self._logger is None:
            self._logger = _log.get_logger()
        self._logger.debug(message, extra=fields)

    @staticmethod
    def _emit(sizes: list[int], bytes_metric: str, count_metric: str, count: int | None = None) -> None:
        from sfn_workers import _metrics

        _metrics.emit(bytes_metric, sum(sizes), "Bytes")
        _metrics.emit(count_metric, len(sizes) if count is None else count, "Count")


def _splice(value: Mapping[str, Any], names: list[str], texts: list[str], replaced: dict[int, Pointer]) -> Output:
    """The output with the moved fields replaced by pointers; its text spliced from pieces already made."""
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
    # Exactly json_text(new_value).
    return Output(new_value, "{" + ",".join(parts) + "}")
