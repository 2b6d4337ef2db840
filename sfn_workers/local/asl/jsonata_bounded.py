"""JSONata evaluation that cannot hold the process: a step, depth, CPU-time and size budget per expression.

jsonata-python calls ``__evaluate_entry``/``__evaluate_exit`` from its environment before and after
every node it evaluates; binding them per evaluation gives each expression its own budget (the
library's own ``Timebox`` keeps one clock per compiled expression and counts depth across threads,
so it cannot guard a cached expression shared by executions). Built-ins that allocate in one call
(``$pad``, AWS's ``$range``) check their size before allocating. Regex literals run on RE2 (linear
time, never a backtracking loop holding the GIL) when google-re2 is installed; a pattern RE2 cannot
run (back-references, look-around) falls back to Python's ``re`` unless it nests quantifiers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .errors import StatesError

__all__ = [
    "DEFAULT_BUDGET",
    "JsonataBudget",
    "cancellable",
    "evaluate_with_budget",
    "nests_quantifiers",
    "regex_engine",
    "safe_functions",
]

_QUERY_ERROR = "States.QueryEvaluationError"


@dataclass(frozen=True, slots=True)
class JsonataBudget:
    """What one JSONata expression may use before it fails with ``States.QueryEvaluationError``."""

    #: Nodes evaluated (a lambda call, a path step, an operator: one each).
    max_steps: int = 1_000_000
    #: Nested evaluations (recursion); far below the Python frames jsonata-python needs for it.
    max_depth: int = 400
    #: CPU seconds of the evaluating thread.
    max_seconds: float = 5.0
    #: Characters of any string the expression builds (16x the 256 KiB payload limit).
    max_string_chars: int = 4 * 1024 * 1024
    #: Items of any array the expression builds (JSONata's range operator allows 1e7 lazily).
    max_items: int = 1_000_000


DEFAULT_BUDGET = JsonataBudget()


class _Exceeded(Exception):
    """Raised inside the library's evaluation; the budget's own flag keeps it from being swallowed."""


_cancelled: ContextVar[Callable[[], object] | None] = ContextVar("sfn_workers_jsonata_cancelled", default=None)


@contextmanager
def cancellable(check: Callable[[], object]) -> Iterator[None]:
    """Expressions evaluated in this context call ``check()`` every 256 steps.

    ``check`` raises to stop the expression (its exception leaves the evaluation unchanged: the
    interpreter's own "execution stopped") or returns true to fail it. The interpreter wraps each
    branch's run in it, so StopExecution ends a long expression at once, not at the end of its budget.
    """
    token = _cancelled.set(check)
    try:
        yield
    finally:
        _cancelled.reset(token)


class _Meter:
    """One evaluation's counters, called by jsonata-python on every node it enters and leaves."""

    __slots__ = ("budget", "cancelled", "deadline", "depth", "escape", "reason", "steps")

    def __init__(self, budget: JsonataBudget) -> None:
        self.budget = budget
        self.steps = 0
        self.depth = 0
        self.deadline = time.thread_time() + budget.max_seconds
        self.reason: str | None = None
        self.cancelled = _cancelled.get()
        self.escape: BaseException | None = None  # what ``cancelled`` raised, re-raised as it is

    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        raise _Exceeded(self.reason)

    def entry(self, _expr: Any, _input: Any, _env: Any) -> None:
        if self.reason is not None:
            raise _Exceeded(self.reason)
        self.steps += 1
        self.depth += 1
        b = self.budget
        if self.depth > b.max_depth:
            self.fail(f"it nests deeper than {b.max_depth} evaluations (runaway recursion?)")
        if self.steps > b.max_steps:
            self.fail(f"it took more than {b.max_steps:,} evaluation steps (an endless loop?)")
        if not self.steps & 255:
            if time.thread_time() > self.deadline:
                self.fail(f"it ran for more than {b.max_seconds:g} s of CPU time")
            if self.cancelled is not None:
                self.poll_cancelled()

    def poll_cancelled(self) -> None:
        assert self.cancelled is not None
        try:
            stop = self.cancelled()
        except BaseException as exc:
            self.escape = exc
            raise
        if stop:
            self.fail("the execution was stopped")

    def exit(self, _expr: Any, _input: Any, _env: Any, result: Any) -> None:
        self.depth -= 1
        if isinstance(result, str):
            self.check_string(len(result))
        elif isinstance(result, list):
            self.check_items(len(result))

    def check_string(self, n: int) -> None:
        if n > self.budget.max_string_chars:
            self.fail(f"it built a string of more than {self.budget.max_string_chars:,} characters")

    def check_items(self, n: int) -> None:
        if n > self.budget.max_items:
            self.fail(f"it built an array of more than {self.budget.max_items:,} items")


def evaluate_with_budget(
    compiled: Any, bindings: Mapping[str, Any], describe: str, budget: JsonataBudget | None = None
) -> Any:
    """``compiled.evaluate(None, bindings)`` within ``budget`` (default: :data:`DEFAULT_BUDGET` at call time).

    Raises ``States.QueryEvaluationError``; ``describe`` names the expression and the field for the
    cause (AWS's wording: "The JSONata expression '...' specified for the field '...'").
    """
    meter = _Meter(budget or DEFAULT_BUDGET)
    scope = dict(bindings)
    scope["__evaluate_entry"] = meter.entry
    scope["__evaluate_exit"] = meter.exit
    outer = getattr(_current, "meter", None)
    _current.meter = meter
    try:
        result = compiled.evaluate(None, scope)
    except Exception as exc:  # the library raises its own exception types
        if meter.escape is not None:
            raise meter.escape from None
        if meter.reason is not None:
            raise _budget_error(describe, meter.reason) from None
        code = getattr(exc, "error", None)
        message = f"{code}: {exc}" if isinstance(code, str) and code and not str(exc).startswith(code) else str(exc)
        raise StatesError(_QUERY_ERROR, f"{describe} threw an error during evaluation. {message}") from exc
    finally:
        _current.meter = outer
    if meter.escape is not None:
        raise meter.escape
    if meter.reason is not None:  # raised where the library swallowed it: still a failure
        raise _budget_error(describe, meter.reason)
    return result


def _budget_error(describe: str, reason: str) -> StatesError:
    cause = f"{describe} was stopped by the local runner's evaluation budget: {reason}. See docs/asl-support.md."
    return StatesError(_QUERY_ERROR, cause)


# -- built-ins that allocate in one call ----------------------------------------------------------
_current = threading.local()  # the meter of the evaluation running on this thread


class _CheckedPad:
    """``$pad`` refusing a width past the string budget before building the string."""

    def call(self, _input: Any, args: Any) -> Any:
        from jsonata.functions import Functions

        args = list(args or [])
        width = args[1] if len(args) > 1 else None
        if isinstance(width, int | float) and not isinstance(width, bool):
            meter: _Meter | None = getattr(_current, "meter", None)
            budget = meter.budget if meter is not None else DEFAULT_BUDGET
            if abs(width) > budget.max_string_chars:
                if meter is not None:
                    meter.check_string(int(abs(width)))  # records the reason, raises
                raise StatesError(_QUERY_ERROR, f"$pad: width {width:g} is more than {budget.max_string_chars:,}")
        while len(args) < 3:
            args.append(None)
        return Functions.pad(args[0], args[1], args[2])


def safe_functions() -> dict[str, Any]:
    """Replacements registered on every compiled expression (bound over the library's built-ins)."""
    from jsonata.jsonata import Jsonata

    return {"pad": Jsonata.JFunction(_CheckedPad(), "<s-ns?:s>")}


# -- regular expressions --------------------------------------------------------------------------
try:  # linear-time matching; optional so the runner still works where the wheel is missing
    import re2 as _re2
except ImportError:  # pragma: no cover - exercised only without google-re2
    _re2 = None


def nests_quantifiers(pattern: str) -> bool:
    """Whether a group holding a quantifier is itself quantified (``(a+)+``, ``(a|b*){2,}``): one linear scan."""
    stack: list[bool] = []  # per open group: has it a quantifier inside?
    quantified_inside = False  # the group that just closed
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            quantified_inside = False
            continue
        if ch == "[":  # a character class: skip to its end, quantifiers inside are literal
            j = i + 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            quantified_inside = False
            continue
        if ch in "*+?{":
            if quantified_inside and ch != "?":
                return True
            if stack:
                stack[-1] = stack[-1] or ch != "?"
        if ch == "(":
            stack.append(False)
        quantified_inside = False
        if ch == ")" and stack:
            quantified_inside = stack.pop()
            if quantified_inside and stack:
                stack[-1] = True
        i += 1
    return False


def regex_engine(pattern: str, flags: Any) -> Any:
    """jsonata-python's ``regex_engine``: RE2 first, Python's ``re`` only for patterns safe to backtrack."""
    prefix = ("(?i)" if flags.case_insensitive else "") + ("(?m)" if flags.multiline else "")
    if _re2 is not None:
        options = _re2.Options()
        options.log_errors = False
        try:
            return _re2.compile(prefix + pattern, options)
        except Exception:  # back-references, look-around: not RE2; try the guarded fallback
            pass
    if nests_quantifiers(pattern):
        raise ValueError(
            f"the regular expression /{pattern}/ nests quantifiers and needs backtracking; the local runner "
            "refuses it so one execution cannot freeze the others (rewrite it without nested repetition)"
        )
    return re.compile(prefix + pattern)
