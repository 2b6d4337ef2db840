"""An activity Task state's side of an activity: put the task on the activity's queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sfn_workers.local.activities import UnknownActivity, activities_for

__all__ = ["schedule"]


def schedule(broker: Any, resource: str, parameters: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Queue the state's input for the activity's workers; the state waits for its token afterwards.

    An activity that does not exist fails the state with ``States.Runtime`` naming it (AWS refuses such
    a definition when the state machine is created; locally the activity may be created later).
    """
    from sfn_workers.local.asl import TaskError

    token = (context.get("Task") or {}).get("Token")
    if not isinstance(token, str):
        raise TaskError("States.Runtime", f"{resource}: an activity task needs a task token")
    text = json.dumps(parameters, separators=(",", ":"), ensure_ascii=False)
    try:
        activities_for(broker).schedule(resource, token, text)
    except UnknownActivity:
        raise TaskError("States.Runtime", f"Activity does not exist: {resource}") from None
    return {}
