"""Run a validated definition: states, data flow, Retry/Catch, Map/Parallel, task tokens, history.

Threads: an execution runs on the caller's thread, which is also the first worker of each Map or
Parallel it reaches; Parallel adds a thread per further branch, Map adds workers (up to
MaxConcurrency, or 40 like AWS's inline Map) only while iterations wait or block (workers.py).
Every worker is registered with the clock so virtual time stays consistent (clock.py).
Values are never mutated in place: ResultPath copies only the spine it changes, so inputs, outputs
and history share structure safely.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .choice import parse_timestamp
from .clock import Clock
from .definition import Catcher, Definition, Machine, Retrier, StateSpec
from .distributed import is_distributed, run_distributed_map
from .errors import StatesError
from .history import History
from .integrations import Integrations, LambdaError, LambdaInvocation, TaskError
from .paths import JsonPath, PathError, compile_path, set_reference_path
from .templates import (
    UNDEFINED,
    clock_functions,
    compile_jsonata_template,
    compile_template,
    is_jsonata,
    jsonata_bindings,
)
from .tokens import TokenBroker, TokenTicket
from .workers import WorkerGroup, before_blocking

__all__ = ["MAX_PAYLOAD_BYTES", "Execution", "ExecutionResult"]

_log = logging.getLogger("sfn_workers.local")

MAX_PAYLOAD_BYTES = 262_144
_INLINE_MAP_CONCURRENCY = 40
_REGION = "us-east-1"
_ACCOUNT = "111111111111"
_NOT_CAUGHT_BY_ALL = frozenset(["States.Runtime", "States.DataLimitExceeded"])


_dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _size(text: str) -> int:
    n = len(text)
    return n if n * 4 <= MAX_PAYLOAD_BYTES else len(text.encode("utf-8"))


@dataclass
class ExecutionResult:
    """How an execution ended, with its history (AWS event types, timestamps from the clock)."""

    status: str
    output: Any | None
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    name: str
    execution_arn: str
    start: datetime
    stop: datetime


class _Abort(Exception):
    """Ends a branch without a catchable error: execution stopped/timed out, or a sibling failed."""


class _Scope:
    """Variables and cancellation of one execution, Parallel branch or Map iteration."""

    __slots__ = ("cancelled", "parent", "vars")

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.cancelled = False

    def lookup(self, name: str) -> Any:
        s: _Scope | None = self
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
        raise PathError(f"The variable '${name}' is not defined")

    def visible(self) -> dict[str, Any]:
        chain = []
        s: _Scope | None = self
        while s is not None:
            chain.append(s.vars)
            s = s.parent
        out: dict[str, Any] = {}
        for d in reversed(chain):
            out.update(d)
        return out

    def is_cancelled(self) -> bool:
        s: _Scope | None = self
        while s is not None:
            if s.cancelled:
                return True
            s = s.parent
        return False


@dataclass
class _StateRun:
    """What one state's run knows: the pieces of the context object and the event chain."""

    spec: StateSpec
    scope: _Scope
    entered: datetime
    entered_id: int
    prev: int
    retry_count: int = 0
    token: str | None = None
    map_item: tuple[int, Any] | None = None
    texts: list[tuple[Any, str]] = field(default_factory=list)  # JSON text already made, by identity
    assigned: dict[str, str] | None = None  # variables this state assigned, as JSON text (StateExited event)

    def text(self, value: Any) -> str:
        """``value`` as JSON text, serialised once per state however many events show it."""
        for v, t in self.texts:
            if v is value:
                return t
        t = _dumps(value)
        self.texts.append((value, t))
        return t


class Execution:
    """One execution of a state machine (see interfaces.md for the contract)."""

    def __init__(
        self,
        definition: Definition,
        input: Any,
        *,
        integrations: Integrations,
        clock: Clock,
        tokens: TokenBroker,
        name: str | None = None,
        state_machine_name: str = "StateMachine",
        state_machine_arn: str | None = None,
        listener: Callable[[dict[str, Any]], None] | None = None,
        context: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        token_grace_seconds: float = 0.05,
    ) -> None:
        self.definition = definition
        self.input = input
        self.integrations = integrations
        self.clock = clock
        self.tokens = tokens
        self.name = name or str(uuid.uuid4())
        self.state_machine_name = state_machine_name
        self.state_machine_arn = state_machine_arn or (
            f"arn:aws:states:{_REGION}:{_ACCOUNT}:stateMachine:{state_machine_name}"
        )
        self.execution_arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{self.name}"
        self.history = History(clock, listener)
        self._rng = rng or random.Random()
        self._virtual = bool(getattr(clock, "virtual", False))
        self._grace = token_grace_seconds if self._virtual else 0.0
        self._stop: tuple[str, str | None, str | None] | None = None
        self._deadline: datetime | None = None
        self._start = clock.now()
        self._overrides = context or {}
        self._ctx_execution: dict[str, Any] = {}
        self._ctx_machine: dict[str, Any] = {}
        self._root = _Scope(None)
        self._tickets: set[Any] = set()

    # -- public -----------------------------------------------------------------------------------
    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        """Abort the execution (thread-safe); ``run`` returns ABORTED soon after."""
        if self._stop is None:
            self._stop = ("ABORTED", error, cause)
        self._root.cancelled = True
        self._wake()

    def run(self) -> ExecutionResult:
        """Run to the end and return the result; blocks the calling thread."""
        hold = getattr(self.clock, "hold", None)
        if hold is not None:
            with hold()():
                return self._run()
        return self._run()

    # -- execution --------------------------------------------------------------------------------
    def _run(self) -> ExecutionResult:
        self._start = start = self.clock.now()
        ov = self._overrides
        ov_exec = ov.get("Execution", {}) if isinstance(ov.get("Execution"), Mapping) else {}
        ov_sm = ov.get("StateMachine", {}) if isinstance(ov.get("StateMachine"), Mapping) else {}
        self._ctx_execution = {
            "Id": ov_exec.get("Id", self.execution_arn),
            "Input": self.input,
            "Name": ov_exec.get("Name", self.name),
            "RoleArn": ov_exec.get("RoleArn", f"arn:aws:iam::{_ACCOUNT}:role/StepFunctionsRole"),
            "StartTime": _iso(start),
            "RedriveCount": 0,
        }
        self._ctx_machine = {
            "Id": ov_sm.get("Id", self.state_machine_arn),
            "Name": ov_sm.get("Name", self.state_machine_name),
        }
        if self.definition.timeout_seconds:
            self._deadline = start + timedelta(seconds=self.definition.timeout_seconds)
        in_text = _dumps(self.input)
        prev = self.history.add(
            "ExecutionStarted",
            0,
            {
                "input": in_text,
                "inputDetails": {"truncated": False},
                "roleArn": self._ctx_execution["RoleArn"],
                "stateMachineArn": self.state_machine_arn,
            },
        )
        status, output, error, cause = "SUCCEEDED", None, None, None
        try:
            # The execution input's size is StartExecution's business (it refuses more than 256 KiB with
            # InvalidExecutionInput before any execution exists); the API layer checks it, not this class.
            # AWS records the first state's entry with previousEventId 0, not the ExecutionStarted id.
            output, prev = self._run_machine(self.definition.machine, self.input, self._root, 0, None)
            self._check(self._root)  # stopped while the last state ran: ABORTED, as on AWS
            self.history.add(
                "ExecutionSucceeded", prev, {"output": _dumps(output), "outputDetails": {"truncated": False}}
            )
        except StatesError as err:
            status, error, cause = "FAILED", err.error, err.cause
            details: dict[str, Any] = {}
            if error is not None:
                details["error"] = error
            if cause is not None:
                details["cause"] = cause
            self.history.add("ExecutionFailed", len(self.history.events), details)
        except _Abort:
            assert self._stop is not None
            status, error, cause = self._stop
            kind = "ExecutionTimedOut" if status == "TIMED_OUT" else "ExecutionAborted"
            d = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            self.history.add(kind, len(self.history.events), d)
        except Exception as exc:  # a bug below us must still end the execution, visibly
            _log.exception("execution %s failed inside the interpreter", self.name)
            status, error, cause = "FAILED", "States.Runtime", f"Internal error: {type(exc).__name__}: {exc}"
            self.history.add("ExecutionFailed", len(self.history.events), {"error": error, "cause": cause})
        finally:
            for t in list(self._tickets):
                self.tokens.close(t)
        return ExecutionResult(
            status, output, error, cause, self.history.events, self.name, self.execution_arn, start, self.clock.now()
        )

    def _wake(self) -> None:
        wake = getattr(self.clock, "wake", None)
        if wake is not None:
            wake()

    def _check(self, scope: _Scope) -> None:
        if self._deadline is not None and self._stop is None and self.clock.now() >= self._deadline:
            self._stop = ("TIMED_OUT", "States.Timeout", None)
            self._root.cancelled = True
            self._wake()
        if scope.is_cancelled():
            raise _Abort()

    def _sleep(self, seconds: float, scope: _Scope) -> None:
        """Let ``seconds`` pass (virtual or real), cut short by stop, cancellation or the execution timeout."""
        if seconds <= 0:
            self._check(scope)
            return
        before_blocking()
        limit = seconds
        if self._deadline is not None:
            limit = min(limit, max(0.0, (self._deadline - self.clock.now()).total_seconds()))
        wait = getattr(self.clock, "wait", None)
        if wait is not None:
            wait(limit, scope.is_cancelled)
        else:
            self.clock.sleep(limit)
        self._check(scope)

    # -- machine and states -----------------------------------------------------------------------
    def _run_machine(
        self, machine: Machine, value: Any, scope: _Scope, prev: int, map_item: tuple[int, Any] | None
    ) -> tuple[Any, int]:
        name: str | None = machine.start_at
        text: str | None = None
        while name is not None:
            self._check(scope)
            spec = machine.states[name]
            name, value, text, prev = self._run_state(spec, value, text, scope, prev)
        return value, prev

    def _run_state(
        self, spec: StateSpec, raw: Any, raw_text: str | None, scope: _Scope, prev: int
    ) -> tuple[str | None, Any, str, int]:
        typ = spec.type
        entered = self.clock.now()
        run = _StateRun(spec, scope, entered, 0, prev)
        if raw_text is None:
            raw_text = run.text(raw)
        else:
            run.texts.append((raw, raw_text))
        run.entered_id = run.prev = self.history.add(
            typ + "StateEntered", prev, {"name": spec.name, "input": raw_text, "inputDetails": {"truncated": False}}
        )
        try:
            nxt, out = _HANDLERS[typ](self, run, raw)
        except StatesError as err:
            self._qualify(err, run)
            caught = self._find_catcher(spec, err)
            if caught is None:
                raise
            return self._exit(run, *self._catch(run, caught, err, raw))
        text = run.text(out)
        if _size(text) > MAX_PAYLOAD_BYTES:
            limit_err = StatesError(
                "States.DataLimitExceeded",
                f"The state/task '{spec.name}' returned a result with a size exceeding the maximum number of bytes "
                "service limit.",
            )
            caught = self._find_catcher(spec, limit_err)
            if caught is None:
                raise limit_err
            return self._exit(run, *self._catch(run, caught, limit_err, raw))
        return self._exit(run, None if typ == "Succeed" or spec.end else nxt, out, run.prev, text)

    def _exit(
        self, run: _StateRun, nxt: str | None, out: Any, prev: int, text: str | None = None
    ) -> tuple[str | None, Any, str, int]:
        """The StateExited event (also after a caught error, as AWS records it)."""
        if text is None:
            text = _dumps(out)
            if _size(text) > MAX_PAYLOAD_BYTES:
                raise StatesError("States.DataLimitExceeded", "The error output exceeds the maximum number of bytes")
        details: dict[str, Any] = {"name": run.spec.name, "output": text, "outputDetails": {"truncated": False}}
        if run.assigned is not None:
            details["assignedVariables"] = dict(run.assigned)
            details["assignedVariablesDetails"] = {"truncated": False}
        prev = self.history.add(run.spec.type + "StateExited", run.prev, details)
        return nxt, out, text, prev

    @staticmethod
    def _store(run: _StateRun, assigned: Mapping[str, Any] | None) -> None:
        """Make Assign's values visible (after the state's output is computed, as AWS orders it)."""
        if assigned is None:
            return
        texts = {k: _dumps(v) for k, v in assigned.items()}
        if sum(_size(t) for t in texts.values()) > MAX_PAYLOAD_BYTES:
            raise StatesError(
                "States.DataLimitExceeded",
                f"The state '{run.spec.name}' assigned variables whose combined size exceeds the maximum number "
                "of bytes service limit.",
            )
        run.scope.vars.update(assigned)
        run.assigned = {**(run.assigned or {}), **texts}

    def _qualify(self, err: StatesError, run: _StateRun) -> None:
        if err.error in ("States.Runtime", "States.QueryEvaluationError") and not getattr(err, "qualified", False):
            prefix = (
                f"An error occurred while executing the state '{run.spec.name}' (entered at the event id "
                f"#{run.entered_id})."
            )
            err.cause = f"{prefix} {err.cause}" if err.cause else prefix
            err.qualified = True  # type: ignore[attr-defined]

    @staticmethod
    def _matches(names: tuple[str, ...], err: StatesError) -> bool:
        e = err.error
        if e == "States.Runtime":
            return False
        for n in names:
            if n == e or (n == "States.ALL" and e not in _NOT_CAUGHT_BY_ALL):
                return True
            if n == "States.TaskFailed" and e not in _NOT_CAUGHT_BY_ALL and e != "States.Timeout":
                return True
        return False

    def _find_catcher(self, spec: StateSpec, err: StatesError) -> Catcher | None:
        for c in spec.catch:
            if self._matches(c.error_equals, err):
                return c
        return None

    def _error_output(self, err: StatesError) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if err.error is not None:
            out["Error"] = err.error
        if err.cause is not None:
            out["Cause"] = err.cause
        return out

    def _catch(self, run: _StateRun, c: Catcher, err: StatesError, raw: Any) -> tuple[str | None, Any, int]:
        err_out = self._error_output(err)
        spec = run.spec
        if spec.jsonata:
            bindings = self._jsonata_bindings(run, raw, None, err_out)
            if "Assign" in c.raw:
                assigned = self._eval_jsonata(spec, "Catch.Assign", c.raw["Assign"], bindings)
            out = self._eval_jsonata(spec, "Catch.Output", c.raw["Output"], bindings) if "Output" in c.raw else err_out
            if "Assign" in c.raw:
                self._store(run, assigned)
        else:
            assigned = (
                self._assign_jsonpath(run, c.raw["Assign"], err_out, raw, "Catch.Assign") if "Assign" in c.raw else None
            )
            if c.result_path is None:
                out = raw
            else:
                try:
                    out = set_reference_path(raw, compile_path(c.result_path), err_out)
                except PathError as exc:
                    raise _result_path_failure(c.result_path, raw, exc) from exc
            if assigned:
                self._store(run, assigned)
        return c.next, out, run.prev

    # -- data flow helpers ------------------------------------------------------------------------
    def _context(self, run: _StateRun) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "Execution": self._ctx_execution,
            "State": {"EnteredTime": _iso(run.entered), "Name": run.spec.name, "RetryCount": run.retry_count},
            "StateMachine": self._ctx_machine,
        }
        if run.token is not None:
            ctx["Task"] = {"Token": run.token}
        if run.map_item is not None:
            ctx["Map"] = {"Item": {"Index": run.map_item[0], "Value": run.map_item[1]}}
        return ctx

    def _resolver(self, run: _StateRun, doc: Any) -> Callable[[JsonPath], Any]:
        ctx: list[Any] = []

        def resolve(p: JsonPath) -> Any:
            if p.root == "$":
                return p.get(doc)
            if p.root == "$$":
                if not ctx:
                    ctx.append(self._context(run))
                return p.get(ctx[0])
            return p.get(run.scope.lookup(p.root[1:]))

        return resolve

    def _path(self, run: _StateRun, fld: str, doc: Any) -> Any:
        p = run.spec.raw.get(fld, "$")
        if p is None:
            return {}
        path = compile_path(p)
        try:
            return self._resolver(run, doc)(path)
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{p}' : {exc}") from exc

    def _template(self, run: _StateRun, fld: str, value: Any, doc: Any) -> Any:
        key = "tpl:" + fld
        tpl = run.spec.cache.get(key)
        if tpl is None:
            tpl = run.spec.cache[key] = compile_template(value)
        return tpl(self._resolver(run, doc))

    def _assign_jsonpath(
        self, run: _StateRun, assign: Any, result: Any, raw: Any, fld: str = "Assign"
    ) -> dict[str, Any]:
        """Evaluate Assign; the caller stores the values once the state's output is computed (AWS's order)."""
        if not isinstance(assign, Mapping):
            raise StatesError("States.Runtime", "The Assign field must be an object")
        values: dict[str, Any] = self._template(run, fld, assign, result)
        return values

    def _jsonata_bindings(
        self, run: _StateRun, raw: Any, result: Any = UNDEFINED, error_output: Any = UNDEFINED
    ) -> dict[str, Any]:
        states: dict[str, Any] = {"input": raw, "context": self._context(run)}
        if result is not UNDEFINED:
            states["result"] = result
        if error_output is not UNDEFINED:
            states["errorOutput"] = error_output
        b = clock_functions(int(self.clock.now().timestamp() * 1000))
        b.update(jsonata_bindings(run.scope.visible()))
        b["states"] = jsonata_bindings({"s": states})["s"]
        return b

    def _eval_jsonata(self, spec: StateSpec, fld: str, value: Any, bindings: Mapping[str, Any]) -> Any:
        key = "jsonata:" + fld
        tpl = spec.cache.get(key)
        if tpl is None:
            tpl = spec.cache[key] = compile_jsonata_template(value, fld)
        return tpl(bindings)

    def _jsonata_value(self, run: _StateRun, fld: str, raw: Any) -> Any:
        """A JSONata state's field that may be a literal or a ``{% %}`` expression (Seconds, Items, ...)."""
        value = run.spec.raw[fld]
        if isinstance(value, str | list | dict):
            return self._eval_jsonata(run.spec, fld, value, self._jsonata_bindings(run, raw))
        return value

    def _finish(self, run: _StateRun, raw: Any, result: Any, *, default_output: Any = UNDEFINED) -> Any:
        """The common tail: ResultSelector, Assign, ResultPath, OutputPath (JSONPath) or Assign, Output (JSONata)."""
        spec = run.spec
        body = spec.raw
        if spec.jsonata:
            has_assign = "Assign" in body
            has_output = "Output" in body
            if not (has_assign or has_output):
                return result if default_output is UNDEFINED else default_output
            bindings = self._jsonata_bindings(run, raw, result)
            assigned = self._eval_jsonata(spec, "Assign", body["Assign"], bindings) if has_assign else None
            if has_output:
                out = self._eval_jsonata(spec, "Output", body["Output"], bindings)
            else:
                out = result if default_output is UNDEFINED else default_output
            if assigned:
                self._store(run, assigned)
            return out
        if "ResultSelector" in body:
            result = self._template(run, "ResultSelector", body["ResultSelector"], result)
        assigned = self._assign_jsonpath(run, body["Assign"], result, raw) if "Assign" in body else None
        if "ResultPath" in body:
            rp = body["ResultPath"]
            if rp is None:
                out = raw
            else:
                try:
                    out = set_reference_path(raw, compile_path(rp), result)
                except PathError as exc:
                    raise _result_path_failure(rp, raw, exc) from exc
        else:
            out = result
        if "OutputPath" in body:
            out = self._path(run, "OutputPath", out)
        if assigned:
            self._store(run, assigned)
        return out

    def _effective_input(self, run: _StateRun, raw: Any, params_field: str = "Parameters") -> Any:
        body = run.spec.raw
        value = self._path(run, "InputPath", raw) if "InputPath" in body else raw
        if params_field in body:
            value = self._template(run, params_field, body[params_field], value)
        return value

    # -- Retry ------------------------------------------------------------------------------------
    def _with_retry(self, run: _StateRun, attempt: Callable[[], Any]) -> Any:
        counts = [0] * len(run.spec.retry)
        while True:
            try:
                return attempt()
            except StatesError as err:
                self._qualify(err, run)
                delay = self._retry_delay(run.spec.retry, counts, err)
                if delay is None:
                    raise
                self._sleep(delay, run.scope)
                run.retry_count += 1

    def _retry_delay(self, retriers: tuple[Retrier, ...], counts: list[int], err: StatesError) -> float | None:
        for i, r in enumerate(retriers):
            if self._matches(r.error_equals, err):
                if counts[i] >= r.max_attempts:
                    return None
                return self.backoff(r, counts, i)
        return None

    def backoff(self, r: Retrier, counts: list[int], i: int) -> float:
        """Delay before the next attempt of retrier ``i`` (and count the attempt)."""
        delay = r.interval_seconds * (r.backoff_rate ** counts[i])
        if r.max_delay_seconds is not None:
            delay = min(delay, r.max_delay_seconds)
        counts[i] += 1
        if r.jitter == "FULL":
            delay = self._rng.uniform(0, delay)
        return float(delay)

    # -- state types ------------------------------------------------------------------------------
    def _pass(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        body = run.spec.raw
        if run.spec.jsonata:
            return run.spec.next, self._finish(run, raw, raw, default_output=raw)
        if "Result" in body:
            value = self._path(run, "InputPath", raw) if "InputPath" in body else raw
            if "Parameters" in body:
                self._template(run, "Parameters", body["Parameters"], value)
            result = body["Result"]
        else:
            result = self._effective_input(run, raw)
        return run.spec.next, self._finish(run, raw, result)

    def _succeed(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        if run.spec.jsonata:
            return None, self._finish(run, raw, raw, default_output=raw)
        value = self._path(run, "InputPath", raw) if "InputPath" in run.spec.raw else raw
        if "OutputPath" in run.spec.raw:
            value = self._path(run, "OutputPath", value)
        return None, value

    def _fail(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        body = run.spec.raw
        error = cause = None
        if run.spec.jsonata:
            bindings = self._jsonata_bindings(run, raw)
            if "Error" in body:
                error = self._eval_jsonata(run.spec, "Error", body["Error"], bindings)
            if "Cause" in body:
                cause = self._eval_jsonata(run.spec, "Cause", body["Cause"], bindings)
        else:
            error = self._fail_field(run, raw, "Error")
            cause = self._fail_field(run, raw, "Cause")
        err = StatesError(error, cause)  # type: ignore[arg-type]
        err.qualified = True  # type: ignore[attr-defined]
        raise err

    def _fail_field(self, run: _StateRun, raw: Any, fld: str) -> str | None:
        body = run.spec.raw
        if fld in body:
            return body[fld]  # type: ignore[no-any-return]
        p = body.get(fld + "Path")
        if p is None:
            return None
        resolve = self._resolver(run, raw)
        try:
            if p.startswith("States."):
                from .intrinsics import compile_intrinsic

                v = compile_intrinsic(p).evaluate(resolve)
            else:
                v = resolve(compile_path(p))
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{p}' : {exc}") from exc
        return v if isinstance(v, str) else _dumps(v)

    def _choice(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        spec = run.spec
        if spec.jsonata:
            bindings = self._jsonata_bindings(run, raw)
            for i, (cond, nxt, rawc) in enumerate(spec.choices):
                ok = self._eval_jsonata(spec, f"Choices[{i}].Condition", cond, bindings) if is_jsonata(cond) else cond
                if not isinstance(ok, bool):
                    raise StatesError(
                        "States.QueryEvaluationError",
                        f"The JSONata expression '{cond}' specified for the field 'Condition' returned an unexpected "
                        f"result type. Expected 'boolean', but was '{_json_type(ok)}' for value: {_dumps(ok)}",
                    )
                if ok:
                    return nxt, self._choice_tail(run, raw, rawc, bindings)
            if spec.default is None:
                raise StatesError(
                    "States.NoChoiceMatched", f"No Choice matched and no Default is specified in '{spec.name}'"
                )
            return spec.default, self._choice_tail(run, raw, spec.raw, bindings)
        value = self._path(run, "InputPath", raw) if "InputPath" in spec.raw else raw
        resolve = self._resolver(run, value)
        for i, (rule, nxt, rawc) in enumerate(spec.choices):
            if rule(resolve):
                assigned = (
                    self._assign_jsonpath(run, rawc["Assign"], value, raw, f"Choices[{i}].Assign")
                    if "Assign" in rawc
                    else None
                )
                return nxt, self._choice_out(run, value, assigned)
        if spec.default is None:
            raise StatesError(
                "States.NoChoiceMatched", f"No Choice matched and no Default is specified in state '{spec.name}'"
            )
        assigned = self._assign_jsonpath(run, spec.raw["Assign"], value, raw) if "Assign" in spec.raw else None
        return spec.default, self._choice_out(run, value, assigned)

    def _choice_out(self, run: _StateRun, value: Any, assigned: dict[str, Any] | None = None) -> Any:
        out = self._path(run, "OutputPath", value) if "OutputPath" in run.spec.raw else value
        if assigned:
            self._store(run, assigned)
        return out

    def _choice_tail(self, run: _StateRun, raw: Any, rule: Mapping[str, Any], bindings: Mapping[str, Any]) -> Any:
        spec = run.spec
        assigned = (
            self._eval_jsonata(spec, f"{id(rule)}.Assign", rule["Assign"], bindings) if "Assign" in rule else None
        )
        if "Output" in rule:
            out = self._eval_jsonata(spec, f"{id(rule)}.Output", rule["Output"], bindings)
        elif "Output" in spec.raw:
            out = self._eval_jsonata(spec, "Output", spec.raw["Output"], bindings)
        else:
            out = raw
        if assigned:
            self._store(run, assigned)
        return out

    def _wait(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        spec = run.spec
        body = spec.raw
        if spec.jsonata:
            if "Seconds" in body:
                secs = self._jsonata_value(run, "Seconds", raw)
                if not _is_int(secs) or secs < 0:
                    raise StatesError(
                        "States.QueryEvaluationError", f"The Seconds field must be a non-negative integer: {secs!r}"
                    )
                seconds = float(secs)
            else:
                ts_val = self._jsonata_value(run, "Timestamp", raw)
                ts = parse_timestamp(ts_val)
                if ts is None:
                    raise StatesError(
                        "States.QueryEvaluationError", f"The Timestamp field is not a valid timestamp: {ts_val!r}"
                    )
                seconds = (ts - self.clock.now()).total_seconds()
            self._sleep(seconds, run.scope)
            return spec.next, self._finish(run, raw, raw, default_output=raw)
        value = self._path(run, "InputPath", raw) if "InputPath" in body else raw
        if "Seconds" in body:
            seconds = float(body["Seconds"])
        elif "Timestamp" in body:
            ts = parse_timestamp(body["Timestamp"])
            if ts is None:
                raise StatesError(
                    "States.Runtime", f"The Timestamp value is not a valid timestamp: {body['Timestamp']}"
                )
            seconds = (ts - self.clock.now()).total_seconds()
        elif "SecondsPath" in body:
            p = body["SecondsPath"]
            v = self._resolve_or_runtime(run, value, p, "SecondsPath")
            if not _is_int(v):
                raise StatesError(
                    "States.Runtime", f"The SecondsPath parameter cannot be parsed as a long value: {p} == {_txt(v)}"
                )
            if v < 0:
                raise StatesError(
                    "States.Runtime", f"The SecondsPath parameter references a negative value: {p} == {v}"
                )
            seconds = float(v)
        else:
            p = body["TimestampPath"]
            v = self._resolve_or_runtime(run, value, p, "TimestampPath")
            ts = parse_timestamp(v)
            if ts is None:
                raise StatesError(
                    "States.Runtime",
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time "
                    f"format string: {p} == {_txt(v)}",
                )
            seconds = (ts - self.clock.now()).total_seconds()
        assigned = self._assign_jsonpath(run, body["Assign"], value, raw) if "Assign" in body else None
        self._sleep(seconds, run.scope)
        return spec.next, self._choice_out(run, value, assigned)

    def _resolve_or_runtime(self, run: _StateRun, doc: Any, p: str, fld: str) -> Any:
        try:
            return self._resolver(run, doc)(compile_path(p))
        except PathError as exc:
            raise StatesError("States.Runtime", f"Invalid path '{p}' : {exc}") from exc

    # -- Task -------------------------------------------------------------------------------------
    def _task(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        result = self._with_retry(run, lambda: self._task_attempt(run, raw))
        return run.spec.next, self._finish(run, raw, result)

    def _task_number(self, run: _StateRun, raw: Any, fld: str) -> float | None:
        body = run.spec.raw
        if fld not in body and fld + "Path" not in body:
            return None
        if fld in body:
            v = self._jsonata_value(run, fld, raw) if run.spec.jsonata else body[fld]
        elif fld + "Path" in body:
            v = self._resolve_or_runtime(run, raw, body[fld + "Path"], fld + "Path")
        else:
            return None
        if not _is_int(v) or v <= 0:
            raise StatesError("States.Runtime", f"The {fld} value must be a positive integer, not {_txt(v)}")
        return float(v)

    def _task_attempt(self, run: _StateRun, raw: Any) -> Any:
        spec = run.spec
        body = spec.raw
        resource: str = body["Resource"]
        wait_token = resource.endswith(".waitForTaskToken")
        ticket: TokenTicket | None = None
        if wait_token:
            ticket = self.tokens.issue(self._wake)
            run.token = ticket.token
            self._tickets.add(ticket)
        try:
            timeout = self._task_number(run, raw, "TimeoutSeconds")
            heartbeat = self._task_number(run, raw, "HeartbeatSeconds")
            if spec.jsonata:
                args = (
                    self._eval_jsonata(spec, "Arguments", body["Arguments"], self._jsonata_bindings(run, raw))
                    if "Arguments" in body
                    else raw
                )
            else:
                args = self._effective_input(run, raw)
            if _is_lambda_function_arn(resource):
                return self._lambda_function(run, resource, args, timeout)
            return self._service_task(run, resource, args, timeout, heartbeat, ticket)
        finally:
            if ticket is not None:
                self.tokens.close(ticket)
                self._tickets.discard(ticket)
                run.token = None

    def _lambda_function(self, run: _StateRun, resource: str, payload: Any, timeout: float | None) -> Any:
        details: dict[str, Any] = {
            "resource": resource,
            "input": run.text(payload),
            "inputDetails": {"truncated": False},
        }
        if timeout is not None:
            details["timeoutInSeconds"] = int(timeout)
        run.prev = self.history.add("LambdaFunctionScheduled", run.prev, details)
        run.prev = self.history.add("LambdaFunctionStarted", run.prev)
        call = LambdaInvocation(resource, payload, timeout, self._context(run))
        try:
            result = self._call(lambda: self.integrations.invoke_lambda(call), timeout, run)
        except LambdaError as exc:
            err = StatesError(exc.error_type, _lambda_cause(exc))
            run.prev = self.history.add("LambdaFunctionFailed", run.prev, {"error": err.error, "cause": err.cause})
            raise err from exc
        except TaskError as exc:
            run.prev = self.history.add("LambdaFunctionFailed", run.prev, {"error": exc.error, "cause": exc.cause})
            raise StatesError(exc.error, exc.cause) from exc
        except StatesError as err:
            if err.error == "States.Timeout":
                run.prev = self.history.add("LambdaFunctionTimedOut", run.prev, {"error": err.error})
            raise
        run.prev = self.history.add(
            "LambdaFunctionSucceeded", run.prev, {"output": run.text(result), "outputDetails": {"truncated": False}}
        )
        return result

    def _service_task(
        self,
        run: _StateRun,
        resource: str,
        params: Any,
        timeout: float | None,
        heartbeat: float | None,
        ticket: TokenTicket | None,
    ) -> Any:
        rtype, rname = _resource_parts(resource)
        base = {"resourceType": rtype, "resource": rname}
        sched: dict[str, Any] = {**base, "region": _REGION, "parameters": _dumps(params)}
        if timeout is not None:
            sched["timeoutInSeconds"] = int(timeout)
        if heartbeat is not None:
            sched["heartbeatInSeconds"] = int(heartbeat)
        run.prev = self.history.add("TaskScheduled", run.prev, sched)
        run.prev = self.history.add("TaskStarted", run.prev, dict(base))
        started = self.clock.now()
        try:
            if rtype == "lambda" and rname.startswith("invoke"):
                result = self._lambda_invoke(run, params, timeout)
            else:
                ctx = self._context(run)
                result = self._call(lambda: self.integrations.call_service(resource, params, ctx), timeout, run)
            if ticket is not None:
                run.prev = self.history.add(
                    "TaskSubmitted", run.prev, {**base, "output": _dumps(result), "outputDetails": {"truncated": False}}
                )
                result = self._await_token(run, ticket, started, timeout, heartbeat)
        except TaskError as exc:
            run.prev = self.history.add("TaskFailed", run.prev, {**base, "error": exc.error, "cause": exc.cause})
            raise StatesError(exc.error, exc.cause) from exc
        except StatesError as err:
            if err.error in ("States.Timeout", "States.HeartbeatTimeout"):
                run.prev = self.history.add("TaskTimedOut", run.prev, {**base, "error": err.error, "cause": err.cause})
            else:
                d = {**base, **{k: v for k, v in (("error", err.error), ("cause", err.cause)) if v is not None}}
                run.prev = self.history.add("TaskFailed", run.prev, d)
            raise
        run.prev = self.history.add(
            "TaskSucceeded", run.prev, {**base, "output": run.text(result), "outputDetails": {"truncated": False}}
        )
        return result

    def _lambda_invoke(self, run: _StateRun, params: Any, timeout: float | None) -> Any:
        if not isinstance(params, Mapping) or not isinstance(params.get("FunctionName"), str):
            raise StatesError("States.Runtime", "The lambda:invoke task needs a 'FunctionName' parameter")
        payload = params.get("Payload")
        if isinstance(payload, str):
            with contextlib.suppress(ValueError):
                payload = json.loads(payload)
        call = LambdaInvocation(params["FunctionName"], payload, timeout, self._context(run))
        try:
            result = self._call(lambda: self.integrations.invoke_lambda(call), timeout, run)
        except LambdaError as exc:
            raise StatesError(exc.error_type, _lambda_cause(exc)) from exc
        request_id = str(uuid.uuid4())
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": result,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {
                    "X-Amz-Executed-Version": ["$LATEST"],
                    "x-amzn-Remapped-Content-Length": ["0"],
                    "Connection": ["keep-alive"],
                    "x-amzn-RequestId": [request_id],
                    "Content-Type": ["application/json"],
                },
                "HttpHeaders": {
                    "Connection": "keep-alive",
                    "Content-Type": "application/json",
                    "X-Amz-Executed-Version": "$LATEST",
                    "x-amzn-Remapped-Content-Length": "0",
                    "x-amzn-RequestId": request_id,
                },
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": 200,
        }

    def _call(self, fn: Callable[[], Any], timeout: float | None, run: _StateRun) -> Any:
        """Run an integration call; with the real clock, TimeoutSeconds cuts it short (States.Timeout).

        In virtual time a synchronous call takes no time, so it cannot time out.
        """
        fn = _guarded(fn)
        if timeout is None or self._virtual:
            return fn()
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=target, name=f"task-{run.spec.name}", daemon=True).start()
        if not done.wait(timeout):
            raise StatesError("States.Timeout", f"The task '{run.spec.name}' timed out after {int(timeout)} seconds")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _await_token(
        self, run: _StateRun, ticket: TokenTicket, started: datetime, timeout: float | None, heartbeat: float | None
    ) -> Any:
        """Wait for SendTaskSuccess/Failure, honouring HeartbeatSeconds and TimeoutSeconds (clock time)."""
        scope = run.scope
        seen = ticket.heartbeats
        beat_at = self.clock.now()
        before_blocking()
        wait_fn = getattr(self.clock, "wait", None)
        while True:
            now = self.clock.now()
            limits = []
            if timeout is not None:
                limits.append(timeout - (now - started).total_seconds())
            if heartbeat is not None:
                limits.append(heartbeat - (now - beat_at).total_seconds())
            if self._deadline is not None:
                limits.append((self._deadline - now).total_seconds())
            limit = max(0.0, min(limits)) if limits else None

            def ready(seen: int = seen) -> bool:
                return ticket.answered or ticket.heartbeats != seen or scope.is_cancelled()

            if wait_fn is not None:
                fired = wait_fn(limit, ready, self._grace)
            else:  # a minimal Clock: poll
                self.clock.sleep(min(limit or 0.05, 0.05))
                fired = ready()
            if ticket.answered:
                break
            self._check(scope)
            if ticket.heartbeats != seen:
                seen = ticket.heartbeats
                beat_at = self.clock.now()
                continue
            if fired:
                continue
            now = self.clock.now()
            self.tokens.close(ticket, "timed_out")
            if ticket.answered:
                break
            if timeout is not None and (now - started).total_seconds() >= timeout:
                raise StatesError("States.Timeout", None)
            if heartbeat is not None and (now - beat_at).total_seconds() >= heartbeat:
                raise StatesError("States.HeartbeatTimeout", None)
        if ticket.outcome == "success":
            return ticket.output
        raise StatesError(ticket.error, ticket.cause)  # type: ignore[arg-type]

    # -- Parallel and Map -------------------------------------------------------------------------
    def _parallel(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        spec = run.spec

        def attempt() -> Any:
            if spec.jsonata:
                args = (
                    self._eval_jsonata(spec, "Arguments", spec.raw["Arguments"], self._jsonata_bindings(run, raw))
                    if "Arguments" in spec.raw
                    else raw
                )
            else:
                args = self._effective_input(run, raw)
            run.prev = self.history.add("ParallelStateStarted", run.prev)
            jobs = [(b, args, None) for b in spec.branches]
            try:
                outs = self._fan_out(run, jobs, len(jobs), None)
            except StatesError as err:
                run.prev = self.history.add("ParallelStateFailed", len(self.history.events), {})
                raise err
            run.prev = self.history.add("ParallelStateSucceeded", len(self.history.events))
            return outs

        result = self._with_retry(run, attempt)
        return spec.next, self._finish(run, raw, result)

    def _map(self, run: _StateRun, raw: Any) -> tuple[str | None, Any]:
        spec = run.spec
        result = self._with_retry(run, lambda: self._map_attempt(run, raw))
        return spec.next, self._finish(run, raw, result)

    def _map_int(self, run: _StateRun, raw: Any, fld: str, default: int | float | None) -> Any:
        body = run.spec.raw
        if fld in body:
            v = self._jsonata_value(run, fld, raw) if run.spec.jsonata else body[fld]
            if run.spec.jsonata and not _is_number(v):
                raise StatesError("States.QueryEvaluationError", f"The {fld} field must be a number, not {_txt(v)}")
        elif fld + "Path" in body:
            p = body[fld + "Path"]
            v = self._resolve_or_runtime(run, raw, p, fld + "Path")
            if isinstance(v, str):
                with contextlib.suppress(ValueError):
                    v = float(v) if fld == "ToleratedFailurePercentage" else int(v)
            if fld == "ToleratedFailurePercentage":
                if not _is_number(v):
                    raise StatesError(
                        "States.Runtime",
                        f'The {fld}Path field refers to value "{_txt(v)}" which is not a valid number: {p}',
                    )
            elif not _is_int(v):
                raise StatesError(
                    "States.Runtime",
                    f'The {fld}Path field refers to value "{_txt(v)}" which is not a valid integer: {p}',
                )
        else:
            return default
        if _is_number(v) and v < 0:
            raise StatesError("States.Runtime", f"{fld} cannot be negative.")
        if fld == "ToleratedFailurePercentage" and v > 100:
            raise StatesError("States.Runtime", f"{fld} cannot be greater than 100.")
        return v

    def _map_attempt(self, run: _StateRun, raw: Any) -> Any:
        spec = run.spec
        body = spec.raw
        assert spec.processor is not None
        if is_distributed(body):  # ItemReader / ItemBatcher / ResultWriter: child executions (distributed.py)
            return run_distributed_map(self, run, raw)
        if spec.jsonata:
            if "Items" in body:
                items = self._jsonata_value(run, "Items", raw)
                if not isinstance(items, list):
                    expr = body["Items"][2:-2].strip() if is_jsonata(body["Items"]) else _dumps(body["Items"])
                    raise StatesError(
                        "States.QueryEvaluationError",
                        f"The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected "
                        f"result type. Expected 'array', but was '{_json_type(items)}' for value: {_dumps(items)}",
                    )
            else:
                items = raw
                if not isinstance(items, list):
                    raise StatesError(
                        "States.QueryEvaluationError", f"Map state input must be an array but was: {_dumps(items)}"
                    )
            doc = raw
        else:
            doc = self._path(run, "InputPath", raw) if "InputPath" in body else raw
            items = self._resolve_or_runtime(run, doc, body.get("ItemsPath", "$"), "ItemsPath")
            if not isinstance(items, list):
                raise StatesError(
                    "States.Runtime",
                    f"Invalid path '{body.get('ItemsPath', '$')}': the Map state's items must be an array, "
                    f"not {_json_type(items)}",
                )
        max_c = self._map_int(run, raw, "MaxConcurrency", 0)
        tol_count = self._map_int(run, raw, "ToleratedFailureCount", None)
        tol_pct = self._map_int(run, raw, "ToleratedFailurePercentage", None)
        run.prev = self.history.add("MapStateStarted", run.prev, {"length": len(items)})
        selector_field = "ItemSelector" if "ItemSelector" in body else "Parameters" if "Parameters" in body else None

        def item_input(index: int, value: Any) -> Any:
            if selector_field is None:
                return value
            item_run = _StateRun(spec, run.scope, run.entered, run.entered_id, run.prev, map_item=(index, value))
            if spec.jsonata:
                b = self._jsonata_bindings(item_run, raw)
                b["states"] = jsonata_bindings({"s": {**b["states"], "context": self._context(item_run)}})["s"]
                return self._eval_jsonata(spec, selector_field, body[selector_field], b)
            return self._template(item_run, selector_field, body[selector_field], doc)

        jobs = [(spec.processor, item, i) for i, item in enumerate(items)]
        tolerance = None
        if tol_count is not None or tol_pct is not None:
            tolerance = (tol_count, tol_pct)
        workers = min(len(items), max_c if max_c else _INLINE_MAP_CONCURRENCY)
        try:
            outs = self._fan_out(run, jobs, max(workers, 1), item_input, tolerance)
        except StatesError:
            run.prev = self.history.add("MapStateFailed", len(self.history.events))
            raise
        run.prev = self.history.add("MapStateSucceeded", len(self.history.events))
        return outs

    def _fan_out(
        self,
        run: _StateRun,
        jobs: Sequence[tuple[Machine, Any, int | None]],
        workers: int,
        item_input: Callable[[int, Any], Any] | None,
        tolerance: tuple[Any, Any] | None = None,
    ) -> list[Any]:
        """Run branches (Parallel) or iterations (Map) on at most ``workers`` threads; first failure cancels."""
        n = len(jobs)
        results: list[Any] = [None] * n
        parent = run.scope
        is_map = item_input is not None
        name = run.spec.name
        failures: list[tuple[int, StatesError]] = []
        lock = threading.Lock()
        group = _Scope(parent)  # cancelling it stops every branch
        next_index = [0]

        def run_one(k: int) -> None:
            machine, value, index = jobs[k]
            scope = _Scope(group)
            prev = run.prev
            if is_map:
                assert item_input is not None and index is not None
                prev = self.history.add("MapIterationStarted", prev, {"name": name, "index": index})
            try:
                inp = item_input(index, value) if is_map and item_input is not None and index is not None else value
                out, prev = self._run_machine(machine, inp, scope, prev, None)
                results[k] = out
                if is_map:
                    self.history.add("MapIterationSucceeded", prev, {"name": name, "index": index})
            except StatesError as err:
                if is_map:
                    self.history.add("MapIterationFailed", len(self.history.events), {"name": name, "index": index})
                with lock:
                    failures.append((k, err))
                    results[k] = self._error_output(err)
                    if not self._tolerated(len(failures), n, tolerance):
                        group.cancelled = True
                self._wake()
            except _Abort:
                if is_map:
                    self.history.add("MapIterationAborted", len(self.history.events), {"name": name, "index": index})
            except Exception as exc:  # a bug below us: fail the branch visibly rather than lose it
                _log.exception("branch %s of state %s failed inside the interpreter", k, name)
                with lock:
                    failures.append((k, StatesError("States.Runtime", f"Internal error: {type(exc).__name__}: {exc}")))
                    group.cancelled = True
                self._wake()

        def worker() -> None:
            while True:
                with lock:
                    k = next_index[0]
                    if k >= n or group.is_cancelled():
                        return
                    next_index[0] = k + 1
                run_one(k)

        if workers <= 1 or n <= 1:
            worker()
        else:
            pool = WorkerGroup(
                min(workers, n),
                worker,
                lambda: next_index[0] < n and not group.is_cancelled(),
                lambda: next_index[0],
                getattr(self.clock, "hold", None),
            )
            pool.run(eager=not is_map, idle=getattr(self.clock, "idle", None))
        self._check(parent)
        if failures and not self._tolerated(len(failures), n, tolerance):
            _k, err = min(failures, key=lambda f: f[0]) if tolerance is None else failures[0]
            if tolerance is not None:
                raise StatesError(
                    "States.ExceedToleratedFailureThreshold",
                    f"The specified tolerated failure threshold was exceeded: {len(failures)} of {n} items failed",
                )
            again = StatesError(err.error, err.cause)
            again.qualified = getattr(err, "qualified", False)  # type: ignore[attr-defined]
            raise again
        return results

    @staticmethod
    def _tolerated(failed: int, total: int, tolerance: tuple[Any, Any] | None) -> bool:
        if tolerance is None:
            return failed == 0
        count, pct = tolerance
        ok = False
        if count is not None and failed <= count:
            ok = True
        if pct is not None and total and failed * 100.0 / total <= pct:
            ok = True
        return ok


_HANDLERS: dict[str, Callable[[Execution, _StateRun, Any], tuple[str | None, Any]]] = {
    "Pass": Execution._pass,
    "Succeed": Execution._succeed,
    "Fail": Execution._fail,
    "Choice": Execution._choice,
    "Wait": Execution._wait,
    "Task": Execution._task,
    "Parallel": Execution._parallel,
    "Map": Execution._map,
}


_last_iso: tuple[datetime, str] | None = None


def _iso(t: datetime) -> str:
    global _last_iso
    last = _last_iso
    if last is not None and last[0] == t:
        return last[1]
    text = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    _last_iso = (t, text)
    return text


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _txt(v: Any) -> str:
    return v if isinstance(v, str) else _dumps(v)


def _json_type(v: Any) -> str:
    if v is None or v is UNDEFINED:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _result_path_failure(path: str, raw: Any, exc: Exception) -> StatesError:
    """ResultPath cannot be applied to the state's input (e.g. ``$.error`` on a string item)."""
    text = _dumps(raw)
    shown = text if len(text) <= 200 else text[:200] + "..."
    return StatesError("States.ResultPathMatchFailure", f"Unable to apply ResultPath '{path}' to input {shown}: {exc}")


def _guarded(fn: Callable[[], Any]) -> Callable[[], Any]:
    """An integration call whose unexpected exceptions become a task failure (logged), not a crash."""

    def call() -> Any:
        try:
            return fn()
        except (LambdaError, TaskError, StatesError):
            raise
        except Exception as exc:
            _log.exception("a task integration raised %s", type(exc).__name__)
            raise TaskError("States.TaskFailed", f"{type(exc).__name__}: {exc}") from exc

    return call


def _is_lambda_function_arn(resource: str) -> bool:
    return resource.startswith("arn:") and ":lambda:" in resource and ":function:" in resource


def _resource_parts(resource: str) -> tuple[str, str]:
    """``arn:aws:states:::sns:publish`` -> (sns, publish); ``...:::aws-sdk:s3:getObject`` -> (aws-sdk:s3, getObject)."""
    tail = resource.split(":::", 1)[1] if ":::" in resource else resource
    service, _, action = tail.rpartition(":")
    return service or tail, action


def _lambda_cause(exc: LambdaError) -> str:
    return _dumps(
        {
            "errorMessage": exc.error_message,
            "errorType": exc.error_type,
            "requestId": exc.request_id or str(uuid.uuid4()),
            "stackTrace": exc.stack_trace,
        }
    )
