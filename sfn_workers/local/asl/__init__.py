"""Amazon States Language interpreter of the local runner (JSONPath and JSONata query languages).

Layers, lowest first (a lower one never imports a higher one): ``paths``/``intrinsics``/``choice``/
``templates`` (evaluate) -> ``query``/``specs`` (query language objects, typed states) ->
``definition`` (parse, validate, build specs; ``walk``) -> ``frame`` (a state's run, the run loop's
``Engine`` interface) -> ``states/*`` (one module per state type) -> ``interpreter`` (the run loop),
on ``clock``/``history``/``tokens``/``workers`` and the :class:`Integrations` the runner supplies.
See docs/architecture.md.
"""

from __future__ import annotations

from .clock import Clock, RealClock, VirtualClock
from .definition import Definition, parse_definition
from .errors import DefinitionError, StatesError
from .integrations import Integrations, LambdaError, LambdaInvocation, TaskError
from .interpreter import MAX_PAYLOAD_BYTES, Execution, ExecutionResult
from .tokens import TokenBroker

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Clock",
    "Definition",
    "DefinitionError",
    "Execution",
    "ExecutionResult",
    "Integrations",
    "LambdaError",
    "LambdaInvocation",
    "RealClock",
    "StatesError",
    "TaskError",
    "TokenBroker",
    "VirtualClock",
    "parse_definition",
]
