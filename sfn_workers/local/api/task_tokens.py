"""The SendTaskSuccess/Failure/Heartbeat actions over a :class:`TaskTokenBackend`, with the real API's limits.

Both local endpoints serve them this way: the strict test endpoint (``sfn_endpoint``) over any
backend, and ``serve`` over its executions' token broker.
"""

from __future__ import annotations

from typing import Any

from sfn_workers._limits import CAUSE_MAX_CHARS, ERROR_MAX_CHARS, PAYLOAD_MAX_BYTES, TASK_TOKEN_MAX_CHARS
from sfn_workers.local.api.protocol import ApiError, ApiRequest, Handler, parse_document
from sfn_workers.local.token_backend import TaskTokenBackend

__all__ = ["task_token_actions"]


def task_token_actions(backend: TaskTokenBackend) -> dict[str, Handler]:
    """The three task-token actions, answering through ``backend``."""

    def success(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.required_text("taskToken", high=TASK_TOKEN_MAX_CHARS)
        output = check.required_text("output", low=0, high=PAYLOAD_MAX_BYTES, utf8=True)
        check.check()
        try:
            parse_document(output)
        except ValueError:
            raise ApiError("InvalidOutput", "Invalid Output: the output is not valid JSON") from None
        backend.send_task_success(token, output)
        return {}

    def failure(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.required_text("taskToken", high=TASK_TOKEN_MAX_CHARS)
        error = check.text("error", high=ERROR_MAX_CHARS)
        cause = check.text("cause", high=CAUSE_MAX_CHARS)
        check.check()
        backend.send_task_failure(token, error, cause)
        return {}

    def heartbeat(request: dict[str, Any]) -> dict[str, Any]:
        check = ApiRequest(request)
        token = check.required_text("taskToken", high=TASK_TOKEN_MAX_CHARS)
        check.check()
        backend.send_task_heartbeat(token)
        return {}

    return {"SendTaskSuccess": success, "SendTaskFailure": failure, "SendTaskHeartbeat": heartbeat}
