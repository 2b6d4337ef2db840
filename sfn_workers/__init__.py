"""sfn-workers: typed, fault-tolerant Lambda workers for AWS Step Functions.

``@task`` turns ``def fn(payload: In, ctx: TaskContext) -> Out`` into a Lambda handler that
validates its input and output, offloads large payloads to S3, always reports a task token's
outcome, and gives downstream calls jittered, deadline-aware retries.

Names are loaded on first use (module ``__getattr__``): a small direct-mode handler imports only
what its calls need, and neither boto3 nor aws-xray-sdk, which cost cold-start time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# ``task`` is eager: every handler needs it. ``retry`` is loaded on first use like the rest, but it
# is also the name of a submodule (the deprecated ``sfn_workers.retry``), and importing a submodule
# binds it on its package. So that module (which loads nothing itself) is imported here, once, and
# its binding dropped: a later ``import sfn_workers.retry`` finds it loaded and binds nothing, and
# the name ``retry`` stays the function ``__getattr__`` hands out.
from sfn_workers import retry as _deprecated_retry_module
from sfn_workers.task import TaskHandler, task

globals().pop("retry")

if TYPE_CHECKING:
    from sfn_workers.activity import run_activity_worker
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
        WorkerStopped,
        WorkerTimeout,
    )
    from sfn_workers.offload import S3Offload, resolve_pointers
    from sfn_workers.report import report_failure, report_heartbeat, report_success
    from sfn_workers.retries import RetryBudget, RetryPolicy, retry

del _deprecated_retry_module

__version__ = "0.1.0"

#: Where each public name lives; imported when first asked for.
_WHERE = {
    "Deadline": "sfn_workers.context",
    "TaskContext": "sfn_workers.context",
    "CallbackDeliveryError": "sfn_workers.errors",
    "ConfigurationError": "sfn_workers.errors",
    "OffloadError": "sfn_workers.errors",
    "OutputValidationError": "sfn_workers.errors",
    "PayloadPointerError": "sfn_workers.errors",
    "PayloadTooLarge": "sfn_workers.errors",
    "RetryBudgetExhausted": "sfn_workers.errors",
    "SfnWorkersError": "sfn_workers.errors",
    "TaskFailure": "sfn_workers.errors",
    "ValidationError": "sfn_workers.errors",
    "WorkerStopped": "sfn_workers.errors",
    "WorkerTimeout": "sfn_workers.errors",
    "run_activity_worker": "sfn_workers.activity",
    "S3Offload": "sfn_workers.offload",
    "resolve_pointers": "sfn_workers.offload",
    # Answering a token later needs the callback machinery, which a small direct-mode cold start does not.
    "report_success": "sfn_workers.report",
    "report_failure": "sfn_workers.report",
    "report_heartbeat": "sfn_workers.report",
    "RetryBudget": "sfn_workers.retries",
    "RetryPolicy": "sfn_workers.retries",
    # Retries are for the user's own downstream calls (and S3/SendTask* ones): not a direct call's.
    "retry": "sfn_workers.retries",
}

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
    "WorkerStopped",
    "WorkerTimeout",
    "__version__",
    "report_failure",
    "report_heartbeat",
    "report_success",
    "resolve_pointers",
    "retry",
    "run_activity_worker",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sfn_workers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
