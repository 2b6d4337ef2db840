"""The seam between the interpreter and whatever runs Task states (in-process Lambdas, emulated services).

The interpreter never imports boto3 or moto: the runner hands it an object implementing
:class:`Integrations`, and tests hand it a stub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Integrations", "LambdaError", "LambdaInvocation", "TaskError"]


@dataclass(slots=True)
class LambdaInvocation:
    """One call of a Lambda function by a Task state.

    ``function`` is the name or ARN as the ASL wrote it (``Resource`` or ``FunctionName``),
    ``payload`` the JSON value sent, ``timeout_seconds`` the Task's TimeoutSeconds (or None) and
    ``context`` the ``$$`` context object of the state. ``payload`` shares structure with the
    execution's state data: an integration must not mutate it (round-trip it through JSON, as
    Lambda's own serialisation does, before handing it to user code).
    """

    function: str
    payload: Any
    timeout_seconds: float | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


class LambdaError(Exception):
    """An unhandled exception in a Lambda function, as Lambda reports it (errorType/errorMessage/stackTrace)."""

    def __init__(
        self,
        error_type: str,
        error_message: str = "",
        stack_trace: list[str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = list(stack_trace or [])
        self.request_id = request_id


class TaskError(Exception):
    """A Task integration failed with a Step Functions error name (e.g. ``SNS.NotFoundException``)."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class Integrations(Protocol):
    """Runs the work of Task states."""

    def invoke_lambda(self, call: LambdaInvocation) -> Any:
        """Run the function and return its JSON result; raise :class:`LambdaError` for a function error."""
        ...

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        """Run any other Task resource and return the service's result; raise :class:`TaskError` on failure."""
        ...
