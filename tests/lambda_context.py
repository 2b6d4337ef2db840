"""A stand-in for the context object the Lambda runtime hands a handler, shared by all test layers."""

from __future__ import annotations

import time
import uuid


class FakeLambdaContext:
    """The part of Lambda's context that sfn-workers and Powertools read.

    Its remaining time runs out in real time, like Lambda's: ``FakeLambdaContext(0.6)`` is a
    function with 600 ms left.
    """

    function_name = "sample-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sample-function"

    def __init__(self, seconds: float = 30.0, request_id: str | None = None) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
