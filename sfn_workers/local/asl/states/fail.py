"""Fail: ends the execution (or branch) with an error and a cause, literal, from a path or an expression."""

from __future__ import annotations

from typing import Any, NoReturn

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..query import dumps
from ..specs import FailSpec


def run_fail(engine: Engine, run: StateRun, spec: FailSpec, raw: Any) -> NoReturn:
    q = spec.query
    values: list[Any] = []
    for fld, path in ((spec.error, spec.error_path), (spec.cause, spec.cause_path)):
        found = q.read(run, raw, raw, fld, path)
        if found is None:
            values.append(None)
        elif found.path is not None and not isinstance(found.value, str):
            values.append(dumps(found.value))  # a path or intrinsic may select any JSON value
        else:
            values.append(found.value)
    err = StatesError(values[0], values[1])
    err.qualified = True  # type: ignore[attr-defined]  # its own message, not a runtime error's
    raise err
