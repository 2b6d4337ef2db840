"""Errors of the interpreter's lower layers: a bad definition, and a States error raised while running."""

from __future__ import annotations

__all__ = ["DefinitionError", "StatesError"]


class DefinitionError(ValueError):
    """The definition is not valid ASL; the message names the state and the field."""


class StatesError(Exception):
    """A Step Functions error (``error``/``cause``) raised while a state runs; Retry/Catch see it."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


def runtime(cause: str) -> StatesError:
    """``States.Runtime``: the error AWS raises for a data-flow problem; not retried, not caught by States.ALL."""
    return StatesError("States.Runtime", cause)
