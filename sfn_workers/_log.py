"""The Powertools Logger sfn-workers logs through, and per-invocation correlation keys."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["CORRELATION_KEYS", "get_logger"]

#: Keys appended for one invocation and removed after it, so warm invocations never mix them up.
CORRELATION_KEYS = ("function_request_id", "execution", "state", "task_token")

_logger: Any = None


def get_logger() -> Any:
    """The process's Powertools Logger (service from POWERTOOLS_SERVICE_NAME, else "sfn-workers").

    Created on first use; Powertools shares handlers between Loggers of one service, so a user's
    own ``Logger()`` of the same service writes to the same stream with the same keys.
    """
    global _logger
    if _logger is None:
        from aws_lambda_powertools import Logger

        _logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "sfn-workers")
    return _logger
