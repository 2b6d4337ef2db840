"""sfn-workers: typed, fault-tolerant Lambda workers for AWS Step Functions.

``@task`` turns ``def fn(payload: In, ctx: TaskContext) -> Out`` into a Lambda handler that
validates its input and output, offloads large payloads to S3, always reports a task token's
outcome, and gives downstream calls jittered, deadline-aware retries.

Importing this package imports neither boto3 nor aws-xray-sdk: both cost cold-start time that a
small direct-mode invocation never needs.
"""

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
from sfn_workers.offload import S3Offload
from sfn_workers.retry import RetryBudget, RetryPolicy, retry
from sfn_workers.task import TaskHandler, task

__version__ = "0.1.0"

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
    "retry",
    "task",
]
