"""Resolving: every pointer in an input, at any depth, replaced by its value, within one byte budget.

One :class:`Resolution` per input. ``max_bytes`` bounds the *total* decoded bytes of all the
pointers it resolves, each occurrence counted (a value that appears twice is validated twice);
identical pointers are fetched and decoded once and resolve to the same object; pointers inside
offloaded documents are resolved too, at most :data:`MAX_NESTING` levels deep.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sfn_workers.errors import PayloadPointerError
from sfn_workers.offload import _s3io
from sfn_workers.offload.pointers import MARKER, Pointer, check_pointer, find_pointers, replace_pointers
from sfn_workers.retries import RetryPolicy

__all__ = ["MAX_NESTING", "ReadRules", "Resolution"]

#: Pointers inside offloaded documents (which hold pointers...) are followed this many levels.
MAX_NESTING = 2


@dataclass(frozen=True, slots=True)
class ReadRules:
    """Which pointers may be read (bucket, prefix), how much they may decode to, and how S3 is called."""

    bucket: str | None
    prefix: str
    max_bytes: int
    retry_policy: RetryPolicy
    env_bucket: str


class Resolution:
    """The pointers of one input: checked, fetched once each, decoded within one budget."""

    def __init__(self, rules: ReadRules, s3: Callable[[], Any], debug: Callable[..., None]) -> None:
        self.rules = rules
        self.s3 = s3
        self.debug = debug
        self.budget = _s3io.ByteBudget(rules.max_bytes)
        self.stored_bytes = 0
        self.fetched = 0
        self._values: dict[Pointer, Any] = {}

    def resolve(
        self, payload: Any, nesting: int = 0, weight: int = 1, found: list[tuple[int, Pointer]] | None = None
    ) -> Any:
        """``payload`` with its pointers replaced; ``weight``: how many times ``payload`` appears.

        ``found``: its pointers, when the caller has looked for them already.
        """
        if found is None:
            found = []
            find_pointers(payload, found)
        if not found:
            return payload
        if nesting > MAX_NESTING:
            raise PayloadPointerError(f"pointers nested more than {MAX_NESTING} levels deep are refused")
        copies = Counter(pointer for _, pointer in found)
        for pointer in copies:
            check_pointer(pointer, self.rules.bucket, self.rules.prefix, self.rules.env_bucket)
        self._check_stored_sizes(copies, weight)
        new = [p for p in copies if p not in self._values]
        jobs = [functools.partial(self._fetch, p, copies[p] * weight, nesting) for p in new]
        for pointer, value in zip(new, _s3io.run_concurrently(jobs), strict=True):
            self._values[pointer] = value
        return replace_pointers(payload, {node: self._values[p] for node, p in found})

    def _check_stored_sizes(self, copies: Counter[Pointer], weight: int) -> None:
        # Decoded bytes are at least the stored ones: a set of pointers whose stored sizes already
        # pass the budget is refused before any call.
        stored = sum(p.bytes * n for p, n in copies.items()) * weight
        if self.budget.spent + stored > self.budget.limit:
            largest = max(copies, key=lambda p: p.bytes * copies[p])
            raise PayloadPointerError(
                f"pointer to {largest} refused: the input's pointers hold {stored} stored bytes (each "
                f"occurrence counted), over max_bytes={self.budget.limit}"
            )

    def _fetch(self, pointer: Pointer, copies: int, nesting: int) -> Any:
        stored = _s3io.get_stored(self.s3(), self.rules.retry_policy, pointer)
        raw = _s3io.decode(pointer, stored, self.budget, copies)
        del stored
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise PayloadPointerError(f"pointer to {pointer} refused: the object is not JSON ({exc})") from exc
        self.stored_bytes += pointer.bytes
        self.fetched += 1
        self.debug("pointer resolved", bucket=pointer.bucket, key=pointer.key, stored_bytes=pointer.bytes)
        if MARKER in raw:  # an offloaded document that itself holds pointers
            value = self.resolve(value, nesting + 1, copies)
        return value
