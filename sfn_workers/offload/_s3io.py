"""S3 I/O of offloaded payloads: put (gzip, SHA-256), get (size and checksum checked), decode
(gzip streamed against a byte budget), best-effort delete, and running several calls at once.

botocore's failures are mapped here, once, to :class:`OffloadError` or
:class:`PayloadPointerError`, with the botocore error as ``__cause__``.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sfn_workers._botocore import describe_aws_failure, is_aws_failure, is_missing_object
from sfn_workers.errors import OffloadError, PayloadPointerError, RetryBudgetExhausted
from sfn_workers.offload.pointers import ENCODING_GZIP, ENCODING_JSON, Pointer
from sfn_workers.retries import RetryPolicy

__all__ = ["ByteBudget", "decode", "delete_quietly", "encode", "get_stored", "put", "run_all", "run_concurrently"]

T = TypeVar("T")

# gzip level 2: on order-like JSON about 80% of level 6's saving at a third of its CPU (bench/README.md).
_GZIP_LEVEL = 2
_GZIP_MIN = 1024  # below this, gzip's header and the CPU rarely pay
_GZIP_WBITS = 31  # zlib's gzip container
_CHUNK = 1 << 20  # decompress 1 MiB at a time, each charged to the budget before the next
_MAX_THREADS = 8


def _is_failure(exc: BaseException) -> bool:
    """botocore's errors (service answers, connection failures) or an empty retry budget."""
    return isinstance(exc, RetryBudgetExhausted) or is_aws_failure(exc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RetryBudgetExhausted) and exc.__cause__ is not None:
        return f"{_reason(exc.__cause__)} (retry budget exhausted)"
    return describe_aws_failure(exc)


# -- writing -----------------------------------------------------------------------------------


def encode(body: bytes, compress: bool) -> tuple[bytes, str]:
    """What to store and its encoding: gzip'd when asked and when that makes it smaller."""
    if compress and len(body) >= _GZIP_MIN:
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        packed = packer.compress(body) + packer.flush()
        if len(packed) < len(body):
            return packed, ENCODING_GZIP
    return body, ENCODING_JSON


def put(s3: Any, policy: RetryPolicy, bucket: str, key: str, stored: bytes, encoding: str | None) -> str:
    """PUT with S3 checking our SHA-256 of the bytes; returns it (hex). :class:`OffloadError` on failure."""
    digest = hashlib.sha256(stored).digest()
    extra = {"ContentEncoding": "gzip"} if encoding == ENCODING_GZIP else {}
    try:
        policy.call(
            s3.put_object,
            Bucket=bucket,
            Key=key,
            Body=stored,
            ContentType="application/json",
            ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
            **extra,
        )
    except Exception as exc:
        if not _is_failure(exc):
            raise
        raise OffloadError(f"could not write s3://{bucket}/{key}: {_reason(exc)}") from exc
    return digest.hex()


def delete_quietly(s3: Any, bucket: str, keys: Sequence[str]) -> str | None:
    """Delete ``keys`` in one call, best effort; returns why it failed, or None."""
    if not keys:
        return None
    try:
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    except Exception as exc:
        return _reason(exc)
    errors = answer.get("Errors") or []
    return f"{len(errors)} objects not deleted ({errors[0].get('Code')})" if errors else None


# -- reading -----------------------------------------------------------------------------------


def get_stored(s3: Any, policy: RetryPolicy, pointer: Pointer) -> bytes:
    """The stored object, exactly ``pointer.bytes`` long with its ``sha256``, or a refusal."""
    try:
        response = policy.call(s3.get_object, Bucket=pointer.bucket, Key=pointer.key)
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if length is not None and length != pointer.bytes:
                raise PayloadPointerError(
                    f"pointer to {pointer} refused: size mismatch (object is {length} bytes, "
                    f"pointer says {pointer.bytes})"
                )
            stored: bytes = body.read(pointer.bytes + 1)
        finally:
            body.close()
    except PayloadPointerError:
        raise
    except Exception as exc:
        if not _is_failure(exc):
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
    return stored


class ByteBudget:
    """Decoded bytes one input may still take; shared by the threads that decode its pointers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def take(self, amount: int) -> bool:
        """Spend ``amount`` if that many are left; False (spending nothing) otherwise."""
        with self._lock:
            if self.spent + amount > self.limit:
                return False
            self.spent += amount
            return True


def _over(pointer: Pointer, budget: ByteBudget) -> PayloadPointerError:
    return PayloadPointerError(
        f"pointer to {pointer} refused: decoded size is over max_bytes={budget.limit} "
        "(the total for all pointers of one input, each occurrence counted)"
    )


def decode(pointer: Pointer, stored: bytes, budget: ByteBudget, copies: int) -> bytes | bytearray:
    """The JSON bytes of a stored object, charged ``copies`` times to ``budget`` as they appear.

    gzip is inflated a chunk at a time, each chunk paid for before the next is made, so a gzip
    bomb stops at the budget instead of after it has filled the memory.
    """
    if pointer.encoding == ENCODING_JSON:
        if not budget.take(len(stored) * copies):
            raise _over(pointer, budget)
        return stored
    unpacker = zlib.decompressobj(_GZIP_WBITS)
    raw = bytearray()
    pending = stored
    try:
        while True:
            before = len(pending)
            chunk = unpacker.decompress(pending, _CHUNK)
            pending = unpacker.unconsumed_tail
            if not budget.take(len(chunk) * copies):
                raise _over(pointer, budget)
            raw += chunk
            if unpacker.eof or (not chunk and len(pending) in (0, before)):
                break  # the end, or no progress (a truncated stream: refused below)
    except zlib.error as exc:
        raise PayloadPointerError(f"pointer to {pointer} refused: the object is not gzip ({exc})") from exc
    if not unpacker.eof or unpacker.unused_data:
        raise PayloadPointerError(f"pointer to {pointer} refused: the object is not one complete gzip stream")
    return raw


# -- several at once ---------------------------------------------------------------------------


def run_all(jobs: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run the jobs (S3 calls, mostly waiting) on up to 8 threads; each one's result or exception, in order.

    Each job runs in a copy of the caller's context, so that retries and client timeouts still
    see the task's deadline.
    """
    if len(jobs) == 1:
        return [_outcome(jobs[0])]
    from concurrent.futures import ThreadPoolExecutor  # only when several objects move

    contexts = [contextvars.copy_context() for _ in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), _MAX_THREADS), thread_name_prefix="sfn-workers-s3") as pool:
        return list(pool.map(lambda ctx, job: ctx.run(_outcome, job), contexts, jobs))


def _outcome(job: Callable[[], T]) -> T | Exception:
    try:
        return job()
    except Exception as exc:
        return exc


def run_concurrently(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """:func:`run_all`, raising the first failure (in job order) once every job has ended."""
    results = run_all(jobs)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return [r for r in results if not isinstance(r, Exception)]
