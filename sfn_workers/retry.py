"""Jittered, deadline-aware, budgeted retries for downstream calls.

(Interface only so far: the retries issue fills it in.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["retry"]


def retry(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    raise NotImplementedError("retry")
