"""S3 payload offloading: large outputs leave as S3 pointers, pointers in inputs come back as values.

Step Functions fails a whole execution (``States.DataLimitExceeded``, which no ``Catch`` handles)
when a state's payload passes 262,144 UTF-8 bytes of JSON. :class:`S3Offload` keeps a task's result
under ``threshold_bytes`` by moving the largest top-level fields to S3 one by one (fields named in
``keep`` never move), and the whole document only when that is not enough.

The parts: :mod:`.planning` (which fields go, sizes), :mod:`.pointers` (the pointer format, keys,
refusal rules), :mod:`._s3io` (put/get, gzip, SHA-256), :mod:`.resolver` (one input's pointers
within one byte budget), :mod:`.options` (settings), :mod:`.offloader` (:class:`S3Offload`).
:func:`resolve_pointers` is the resolver for code that does not run under ``@task``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfn_workers.offload.offloader import S3Offload
    from sfn_workers.offload.options import DEFAULT_MAX_BYTES, default_max_bytes
    from sfn_workers.offload.planning import INLINE, Plan, field_texts, plan_offload, utf8_len
    from sfn_workers.offload.pointers import ENCODING_GZIP, ENCODING_JSON, POINTER_FIELD, Pointer
    from sfn_workers.offload.resolver import MAX_NESTING

#: Where each name lives; imported on first use, so that ``@task`` (which builds an ``S3Offload``
#: at decoration) loads the writer, the resolver and the S3 I/O only when a payload needs them.
_WHERE = {
    "S3Offload": "offloader",
    "DEFAULT_MAX_BYTES": "options",
    "default_max_bytes": "options",
    "INLINE": "planning",
    "Plan": "planning",
    "field_texts": "planning",
    "plan_offload": "planning",
    "utf8_len": "planning",
    "ENCODING_GZIP": "pointers",
    "ENCODING_JSON": "pointers",
    "POINTER_FIELD": "pointers",
    "Pointer": "pointers",
    "MAX_NESTING": "resolver",
}

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENCODING_GZIP",
    "ENCODING_JSON",
    "INLINE",
    "MAX_NESTING",
    "POINTER_FIELD",
    "Plan",
    "Pointer",
    "S3Offload",
    "default_max_bytes",
    "field_texts",
    "plan_offload",
    "resolve_pointers",
    "utf8_len",
]


def resolve_pointers(value: Any, *, offload: S3Offload | None = None, s3: object = None) -> Any:
    """``value`` with every sfn-workers S3 pointer in it replaced by the JSON value it points to.

    For Lambdas and scripts that do not run under ``@task`` but receive what one produced. The
    same rules as ``@task`` apply (bucket and prefix of ``offload``, default ``S3Offload()`` from
    the ``SFN_WORKERS_*`` variables; sizes, checksums, ``max_bytes`` for all pointers together);
    a refusal raises :class:`~sfn_workers.errors.PayloadPointerError`, S3 failing
    :class:`~sfn_workers.errors.OffloadError`. ``s3`` is a boto3 S3 client to use instead of the
    process's cached one. ``value`` is not modified.
    """
    from sfn_workers._aws import Clients, default_clients
    from sfn_workers.offload.offloader import S3Offload

    rules = offload if offload is not None else S3Offload()
    return rules.resolve(value, Clients({"s3": s3}) if s3 is not None else default_clients())


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sfn_workers.offload' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
