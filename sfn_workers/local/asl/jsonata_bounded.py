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

import contextlib
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
    "expanded_chars",
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
    limit = meter.budget.max_string_chars
    if isinstance(result, Mapping | list) and expanded_chars(result, limit) > limit:
        raise _budget_error(describe, f"its result would take more than {limit:,} characters as JSON")
    return result


def _budget_error(describe: str, reason: str) -> StatesError:
    cause = f"{describe} was stopped by the local runner's evaluation budget: {reason}. See docs/asl-support.md."
    return StatesError(_QUERY_ERROR, cause)


# -- built-ins that allocate in one call ----------------------------------------------------------
_current = threading.local()  # the meter of the evaluation running on this thread


def expanded_chars(value: Any, limit: int) -> int:
    """About how many characters ``value`` takes as JSON, with shared sub-values counted each time.

    Values built by an expression share references (``[$a, $a]``), so their JSON can be exponentially
    larger than their memory; each distinct container is sized once (memoised, iteratively), and the
    walk stops as soon as the total passes ``limit``.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        v, done = stack.pop()
        if isinstance(v, Mapping):
            children = list(v.values())
            keys = sum(len(str(k)) + 4 for k in v)
        elif isinstance(v, list | tuple):
            children, keys = list(v), 0
        else:
            continue
        if id(v) in sizes:
            continue
        if done:
            total = 2 + keys + sum(sizes.get(id(c), _scalar_chars(c)) + 1 for c in children)
            sizes[id(v)] = min(total, limit + 1)
            continue
        stack.append((v, True))
        stack.extend((c, False) for c in children if isinstance(c, Mapping | list | tuple) and id(c) not in sizes)
    return sizes.get(id(value), _scalar_chars(value))


def _scalar_chars(v: Any) -> int:
    return len(v) + 2 if isinstance(v, str) else 24


def _check_size(n: int, what: str) -> None:
    meter: _Meter | None = getattr(_current, "meter", None)
    budget = meter.budget if meter is not None else DEFAULT_BUDGET
    if n > budget.max_string_chars:
        if meter is not None:
            meter.check_string(n)  # records the reason, raises
        raise StatesError(_QUERY_ERROR, f"{what} would build more than {budget.max_string_chars:,} characters")


def _limit() -> int:
    meter: _Meter | None = getattr(_current, "meter", None)
    return (meter.budget if meter is not None else DEFAULT_BUDGET).max_string_chars


class _Checked:
    """A built-in that allocates in one call, run only after ``estimate(args)`` fits the string budget."""

    def __init__(self, name: str, estimate: Callable[[list[Any]], int], arity: int) -> None:
        self.name = name
        self.estimate = estimate
        self.arity = arity

    def call(self, _input: Any, args: Any) -> Any:
        from jsonata.functions import Functions

        args = list(args or [])
        _check_size(self.estimate(args), f"${self.name}")
        args += [None] * (self.arity - len(args))
        return getattr(Functions, self.name)(*args)


def _pad_size(args: list[Any]) -> int:
    width = args[1] if len(args) > 1 else None
    if isinstance(width, int | float) and not isinstance(width, bool) and abs(width) < float("inf"):
        return int(abs(width))
    return 0


def _string_size(args: list[Any]) -> int:
    return expanded_chars(args[0], _limit()) if args and not isinstance(args[0], str) else 0


def _join_size(args: list[Any]) -> int:
    strs = args[0] if args else None
    if not isinstance(strs, list):
        return 0
    sep = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    return sum(len(x) for x in strs if isinstance(x, str)) + len(sep) * max(0, len(strs) - 1)


def _replace_size(args: list[Any]) -> int:
    """The result's length: every match replaced (``$0``/``$n`` counted as the longest match)."""
    text, pattern, repl = [*args, None, None, None][:3]
    if not isinstance(text, str) or not isinstance(repl, str) or not pattern:
        return 0  # nothing to replace, or a function replacement (its results are metered one by one)
    if len(text) + (len(text) + 1) * len(repl) <= _limit():
        return 0  # even a match at every position fits: no need to count
    if isinstance(pattern, str):
        count, longest = text.count(pattern), len(pattern)
    else:
        count = longest = 0
        for m in pattern.finditer(text):
            count += 1
            longest = max(longest, m.end() - m.start())
    per_match = len(repl) + (repl.count("$") * longest if "$" in repl else 0)
    return len(text) + count * per_match


def safe_functions() -> dict[str, Any]:
    """Replacements registered on every compiled expression (bound over the library's built-ins)."""
    from jsonata.jsonata import Jsonata

    return {
        "pad": Jsonata.JFunction(_Checked("pad", _pad_size, 3), "<s-ns?:s>"),
        "string": Jsonata.JFunction(_Checked("string", _string_size, 2), "<x-b?:s>"),
        "join": Jsonata.JFunction(_Checked("join", _join_size, 2), "<a<s>s?:s>"),
        "replace": Jsonata.JFunction(_Checked("replace", _replace_size, 4), "<s-(sf)(sf)n?:s>"),
    }


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
        # back-references, look-around: not RE2's; such a pattern goes on to the guarded fallback
        with contextlib.suppress(Exception):
            return _re2.compile(prefix + pattern, options)
    if nests_quantifiers(pattern):
        raise ValueError(
            f"the regular expression /{pattern}/ nests quantifiers and needs backtracking; the local runner "
            "refuses it so one execution cannot freeze the others (rewrite it without nested repetition)"
        )
    return re.compile(prefix + pattern)
