"""The local Step Functions API's first import path, kept for code and docs that use it.

The API now lives in :mod:`sfn_workers.local.api` (protocol, backend, retention, server); these
names are the same objects.
"""

from __future__ import annotations

from sfn_workers._limits import PAYLOAD_MAX_BYTES
from sfn_workers.local.api.server import DEFAULT_PORT, Server, serve, start_server
from sfn_workers.local.api.stepfunctions import LocalStepFunctions

__all__ = ["DEFAULT_PORT", "IO_LIMIT_BYTES", "LocalStepFunctions", "Server", "serve", "start_server"]

#: Execution input and output: UTF-8 bytes of the JSON text (the one limit, under its old name).
IO_LIMIT_BYTES = PAYLOAD_MAX_BYTES
