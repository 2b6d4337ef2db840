"""Logs are structured JSON correlated with the invocation, and keys never leak into the next one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

SCRIPT = textwrap.dedent(
    """
    from sfn_workers import task, TaskContext

    class Ctx:
        aws_request_id = "req-123"
        def get_remaining_time_in_millis(self):
            return 10_000

    @task(offload=False)
    def handler(payload: dict, ctx: TaskContext) -> dict:
        ctx.logger.info("working", extra={"step": payload.get("n")})
        return {}

    handler({"n": 1, "sfn_context": {"execution": "exec-1", "state": "Ship"}}, Ctx())
    handler({"n": 2}, None)
    """
)


def log_lines() -> list[dict[str, Any]]:
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_LOG_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_log_lines_carry_request_execution_and_state_then_forget_them() -> None:
    first, second = log_lines()
    assert first["message"] == "working"
    assert first["service"] == "orders"
    assert first["function_request_id"] == "req-123"
    assert first["execution"] == "exec-1"
    assert first["state"] == "Ship"
    # the next (warm) invocation carries none of the previous one's correlation keys
    assert second["step"] == 2
    assert not {"function_request_id", "execution", "state"} & set(second)


def test_redacted_tokens_correlate_without_revealing_the_token() -> None:
    from sfn_workers.context import redact_token

    shared_prefix = "AQCEAAAAKgAAAAMAAAAAAAAAA"
    first, second = shared_prefix + "x" * 500, shared_prefix + "y" * 500
    assert redact_token(first) == redact_token(first)
    assert redact_token(first) != redact_token(second)
    assert shared_prefix[:8] not in (redact_token(first) or "")
    assert (redact_token(first) or "").endswith("(525 chars)")
