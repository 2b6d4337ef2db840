"""Task-token callbacks: SendTaskSuccess/Failure/Heartbeat, watchdog, SQS batches.

(Interface only so far: the callbacks issue fills it in.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfn_workers.task import TaskHandler

__all__ = ["run_callback", "run_sqs_batch"]


def run_callback(handler: TaskHandler[Any, Any], event: Any, lambda_context: Any) -> Any:
    raise NotImplementedError("callback mode")


def run_sqs_batch(handler: TaskHandler[Any, Any], event: Any, lambda_context: Any) -> Any:
    raise NotImplementedError("SQS batch mode")
