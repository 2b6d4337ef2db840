"""The local runner: run a state machine on one machine, no AWS account, no Docker.

``run_execution("template.yaml", input)`` runs the template's state machine with its handlers
in-process and S3/SQS/SNS/DynamoDB on an embedded emulator, on a virtual clock; ``sfn-workers run``
is the same from the command line. Importing this package imports neither boto3 nor moto.
"""

from sfn_workers.local.approvals import Answer, Approvals
from sfn_workers.local.runner import LocalRunner, RunningExecution, run_execution
from sfn_workers.local.sam import TemplateError, UnknownResourceError

__all__ = [
    "Answer",
    "Approvals",
    "LocalRunner",
    "RunningExecution",
    "TemplateError",
    "UnknownResourceError",
    "run_execution",
]
