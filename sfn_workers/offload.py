"""S3 payload offloading: write large outputs to S3 as pointers, resolve pointers in inputs.

(Interface only so far: the offloading issue fills it in.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sfn_workers._aws import Clients
from sfn_workers.config import (
    DEFAULT_PREFIX,
    DEFAULT_THRESHOLD_BYTES,
    ENV_BUCKET,
    ENV_PREFIX,
    resolve_setting,
)
from sfn_workers.models import Output

__all__ = ["S3Offload"]


class S3Offload:
    """Where and when outputs go to S3."""

    def __init__(
        self,
        bucket: str | None = None,
        prefix: str | None = None,
        threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
        keep: Iterable[str] = (),
        always: bool = False,
        compress: bool = True,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.bucket = resolve_setting(bucket, ENV_BUCKET, str.strip, None)
        self.prefix = resolve_setting(prefix, ENV_PREFIX, str.strip, DEFAULT_PREFIX)
        self.threshold_bytes = threshold_bytes
        self.keep = tuple(keep)
        self.always = always
        self.compress = compress
        self.max_bytes = max_bytes

    def resolve(self, payload: Any, clients: Clients) -> Any:
        return payload

    def offload(self, output: Output, clients: Clients, scope: str) -> Output:
        return output
