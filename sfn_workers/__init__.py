"""sfn-workers: typed, fault-tolerant Lambda workers for AWS Step Functions.

``@task`` turns ``def fn(payload: In, ctx: TaskContext) -> Out`` into a Lambda handler that
validates its input and output, offloads large payloads to S3, always reports a task token's
outcome, and gives downstream calls jittered, deadline-aware retries.

Importing this package imports neither boto3 nor aws-xray-sdk: both cost cold-start time that a
small direct-mode invocation never needs.
"""

from typing import TYPE_CHECKING, Any

# The deprecated module path first, so that the name ``retry`` bound below stays the function even
# after user code imports ``sfn_workers.retry`` (an import binds a submodule on its package).
from sfn_workers import retry as _deprecated_retry_module
from sfn_workers.context import Deadline, TaskContext
from sfn_workers.errors import (
    CallbackDeliveryError,
    ConfigurationError,
    OffloadError,
    OutputValidationError,
    PayloadPointerError,
    PayloadTooLarge,
    RetryBudgetExhausted,
    SfnWorkersError,
    TaskFailure,
    ValidationError,
    WorkerTimeout,
)
from sfn_workers.offload import S3Offload, resolve_pointers
from sfn_workers.retries import RetryBudget, RetryPolicy, retry
from sfn_workers.task import TaskHandler, task

if TYPE_CHECKING:
    from sfn_workers.report import report_failure, report_heartbeat, report_success

del _deprecated_retry_module

__version__ = "0.1.0"

#: Loaded on first use: answering a token later needs the callback machinery, which a small
#: direct-mode cold start does not.
_LAZY = {
    "report_success": "sfn_workers.report",
    "report_failure": "sfn_workers.report",
    "report_heartbeat": "sfn_workers.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sfn_workers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CallbackDeliveryError",
    "ConfigurationError",
    "Deadline",
    "OffloadError",
    "OutputValidationError",
    "PayloadPointerError",
    "PayloadTooLarge",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryPolicy",
    "S3Offload",
    "SfnWorkersError",
    "TaskContext",
    "TaskFailure",
    "TaskHandler",
    "ValidationError",
    "WorkerTimeout",
    "__version__",
    "report_failure",
    "report_heartbeat",
    "report_success",
    "resolve_pointers",
    "retry",
    "task",
]
