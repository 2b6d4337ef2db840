"""Small Integrations stubs for interpreter tests: functions are plain Python callables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.asl import (
    Clock,
    Execution,
    ExecutionResult,
    LambdaInvocation,
    TaskError,
    TokenBroker,
    VirtualClock,
    parse_definition,
)

ARN = "arn:aws:lambda:us-east-1:111111111111:function:"


class Functions:
    """Lambda functions by name; ``services`` answers other resources."""

    def __init__(self, **functions: Callable[[Any], Any]) -> None:
        self.functions = functions
        self.services: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {}
        self.calls: list[LambdaInvocation] = []

    def invoke_lambda(self, call: LambdaInvocation) -> Any:
        self.calls.append(call)
        return self.functions[call.function.rsplit(":", 1)[-1]](call.payload)

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        if resource not in self.services:
            raise TaskError("States.Runtime", f"no stub for {resource}")
        return self.services[resource](parameters, context)


def execute(
    definition: Mapping[str, Any],
    input: Any = None,
    functions: Functions | None = None,
    clock: Clock | None = None,
    tokens: TokenBroker | None = None,
    **kwargs: Any,
) -> ExecutionResult:
    return execution(definition, input, functions, clock, tokens, **kwargs).run()


def execution(
    definition: Mapping[str, Any],
    input: Any = None,
    functions: Functions | None = None,
    clock: Clock | None = None,
    tokens: TokenBroker | None = None,
    **kwargs: Any,
) -> Execution:
    return Execution(
        parse_definition(definition),
        {} if input is None else input,
        integrations=functions or Functions(),
        clock=clock or VirtualClock(),
        tokens=tokens or TokenBroker(),
        **kwargs,
    )


def events(result: ExecutionResult, kind: str) -> list[dict[str, Any]]:
    return [e for e in result.history if e["type"] == kind]
