"""The one walk over an ASL definition's states, nested Parallel branches and Map processors included.

Validation (definition.py), the graph (graph.py), the SAM helpers and tools/check_asl.py all need
"every state, at any depth"; they share this walk so that a new kind of nesting is taught once.
It works on the JSON as written (no validation): what is not an object is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StateVisit", "nested_machines", "walk_states"]


@dataclass(frozen=True, slots=True)
class StateVisit:
    """One state met by :func:`walk_states`: ``where`` names it for messages (``Map.ItemProcessor.Ship``)."""

    where: str
    name: str
    state: Mapping[str, Any]
    machine: Mapping[str, Any]  # the StartAt/States object the state belongs to


def nested_machines(state: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(field, value) of the machines directly inside a state: ``Branches[i]``, ``ItemProcessor`` / ``Iterator``.

    Values are returned as written (they may not be objects), so validation can say what is wrong.
    """
    found: list[tuple[str, Any]] = []
    branches = state.get("Branches")
    if isinstance(branches, list):
        found += [(f"Branches[{i}]", b) for i, b in enumerate(branches)]
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            found.append((key, state[key]))
            break
    return found


def walk_states(machine: Mapping[str, Any], where: str = "") -> Iterator[StateVisit]:
    """Every state of ``machine`` (a definition or a nested machine), depth first, in written order."""
    states = machine.get("States")
    if not isinstance(states, Mapping):
        return
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        here = f"{where}{name}"
        yield StateVisit(here, name, state, machine)
        for fld, inner in nested_machines(state):
            if isinstance(inner, Mapping):
                yield from walk_states(inner, f"{here}.{fld}.")
