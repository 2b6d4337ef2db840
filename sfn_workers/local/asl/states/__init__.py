"""One module per state type; :data:`RUNNERS` maps each typed spec to the function that runs it.

A runner gets the run loop (``Engine``), the state's run (``StateRun``), its spec and its raw input,
and returns (the next state's name or None, the state's output). It raises ``StatesError`` for the
state's error (the run loop applies Catch) and uses ``Engine.with_retry`` for Retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..frame import Engine, StateRun
from ..specs import (
    ChoiceSpec,
    DistributedMapSpec,
    FailSpec,
    MapSpec,
    ParallelSpec,
    PassSpec,
    StateSpec,
    SucceedSpec,
    TaskSpec,
    WaitSpec,
)
from .choice import run_choice
from .distributed_map import run_distributed_map
from .fail import run_fail
from .map import run_map
from .parallel import run_parallel
from .pass_ import run_pass
from .succeed import run_succeed
from .task import run_task
from .wait import run_wait

__all__ = ["RUNNERS", "Runner"]

Runner = Callable[[Engine, StateRun, Any, Any], tuple[str | None, Any]]

RUNNERS: dict[type[StateSpec], Runner] = {
    PassSpec: run_pass,
    SucceedSpec: run_succeed,
    FailSpec: run_fail,
    ChoiceSpec: run_choice,
    WaitSpec: run_wait,
    TaskSpec: run_task,
    ParallelSpec: run_parallel,
    MapSpec: run_map,
    DistributedMapSpec: run_distributed_map,
}
