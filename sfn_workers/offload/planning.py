"""Which fields leave a task's output, counted as Step Functions counts: UTF-8 bytes of the JSON text.

Pure decisions, no S3: :func:`plan_offload` picks the fields (largest first, never a kept one),
:func:`field_texts` cuts each top-level field's JSON out of the text the pipeline already made, so
the field that makes an output large is not serialised a second time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sfn_workers._limits import PAYLOAD_MAX_BYTES
from sfn_workers.errors import OffloadError
from sfn_workers.models import json_text

__all__ = ["INLINE", "Plan", "field_texts", "plan_offload", "utf8_len"]


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


_ENDS: dict[type[Any], str] = {dict: "{}", list: "[]", str: '""'}


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


@dataclass(frozen=True, slots=True)
class Plan:
    """What to move to S3: the indexes of top-level fields, or the whole document.

    ``over_threshold`` is the size (an upper bound) of a document that stays over the threshold
    because of its kept fields, though under Step Functions' limit: it travels, with a warning.
    """

    fields: tuple[int, ...] = ()
    whole: bool = False
    over_threshold: int = 0


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
    and never when they are smaller than their pointer. Kept fields never move: the threshold is a
    target and Step Functions' 262,144 bytes the rule, so when they alone keep the document over
    the threshold it still travels if it is under the limit (``Plan.over_threshold`` says so), and
    :class:`OffloadError` says why when it is not (a Choice state reading ``$.inStock`` from a
    whole-document pointer would fail the execution).
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
    if size <= PAYLOAD_MAX_BYTES:
        return Plan(fields=tuple(moved), over_threshold=size)
    raise OffloadError(
        f"the output is still about {size} bytes with every other field offloaded, over Step Functions' "
        f"limit of {PAYLOAD_MAX_BYTES} bytes, because of the fields kept inline ({', '.join(kept)}); "
        "keep fewer or smaller fields"
    )
