"""Run a template's Lambda function in this process, the way the Lambda service would.

* The handler module is imported from the function's CodeUri with its Environment applied (``@task``
  reads its settings at decoration time), once per function: two functions sharing a module each
  get their own copy, as two Lambda functions each get their own sandbox.
* Each call sees the function's Environment through ``os.environ`` (a per-invocation overlay, so
  functions with different variables run at the same time) and gets a Lambda-like context whose
  ``get_remaining_time_in_millis()`` counts down the function's Timeout; a call that outlives it
  ends like Lambda's (``Sandbox.Timedout``) while its thread is left to finish on its own.
* Errors come back as :class:`asl.LambdaError` with Lambda's errorType/errorMessage/stackTrace:
  an exception's class name, ``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``,
  ``Runtime.UserCodeSyntaxError``, ``Runtime.MarshalError``.
* Payloads cross the boundary as JSON, as they do on AWS: a handler cannot share objects with
  the interpreter, and a result that is not JSON is Lambda's marshal error.
"""

from __future__ import annotations

import ctypes
import heapq
import importlib
import itertools
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from sfn_workers.local.sam import REGION, Function

__all__ = [
    "LambdaContext",
    "LocalFunction",
    "PythonFunction",
    "invocation_environment",
    "lambda_error",
    "runtime_environment",
]

Handler = Callable[[Any, Any], Any]


def _lambda_error(error_type: str, message: str, stack: list[str] | None = None) -> Exception:
    from sfn_workers.local.asl import LambdaError

    return LambdaError(error_type, message, stack or [])


def lambda_error(exc: BaseException) -> Exception:
    """The :class:`asl.LambdaError` Lambda reports for an exception that left a handler."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop the runner's own frame
    stack = [line for line in traceback.format_list(frames)]
    return _lambda_error(type(exc).__name__, str(exc), stack)


@dataclass
class LambdaContext:
    """What Lambda passes as ``context``: names, memory, request id and the time left."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float  # time.monotonic() at which Lambda stops the call
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# -- environment during a call -------------------------------------------------------------------


class _EnvironOverlay(MutableMapping[str, str]):
    """``os.environ`` seen through the variables of the invocation running in this context.

    Installed once in place of ``os.environ``: outside an invocation it reads and writes the real
    environment; inside one, the function's variables come first and what the handler sets or
    deletes stays with that invocation. ``os.getenv`` and botocore read through it, so two functions
    with different environments run at the same time, each seeing its own.
    """

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real

    def __getitem__(self, key: str) -> str:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.real[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = _overlay.get()
        if overlay is None:
            self.real[key] = value
        else:
            overlay[key] = str(value)

    def __delitem__(self, key: str) -> None:
        overlay = _overlay.get()
        if overlay is None:
            del self.real[key]
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = None

    def _keys(self) -> list[str]:
        overlay = _overlay.get()
        if overlay is None:
            return list(self.real)
        keys = [k for k in self.real if overlay.get(k, "") is not None]
        return keys + [k for k, v in overlay.items() if v is not None and k not in self.real]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def copy(self) -> dict[str, str]:
        return dict(self)

    def __repr__(self) -> str:
        return f"environ({dict(self)!r})"


_overlay: ContextVar[dict[str, str | None] | None] = ContextVar("sfn_workers_lambda_environment", default=None)
_install_lock = threading.Lock()


def _install_overlay() -> None:
    """Put the overlay in place of ``os.environ`` (once per process; it passes through when idle)."""
    if isinstance(os.environ, _EnvironOverlay):
        return
    with _install_lock:
        if not isinstance(os.environ, _EnvironOverlay):
            setattr(os, "environ", _EnvironOverlay(os.environ))  # noqa: B010 - the type differs on purpose


@contextmanager
def invocation_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Give the code running in this context (thread, or asyncio task) ``env`` on top of the process's."""
    if not env:  # a plain handler given to the runner: nothing to apply
        yield
        return
    _install_overlay()
    token = _overlay.set(dict(env))
    try:
        yield
    finally:
        _overlay.reset(token)


def runtime_environment(fn: Function) -> dict[str, str]:
    """Lambda's reserved variables for ``fn`` followed by its own (Globals already merged in)."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "_HANDLER": fn.handler,
        "LAMBDA_TASK_ROOT": str(fn.code_uri),
        # No X-Ray daemon here: Powertools' Tracer (on because the function name is set) stays quiet.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_XRAY_SDK_ENABLED": "false",
    }
    env.update(fn.environment)
    return env


# -- timeouts ------------------------------------------------------------------------------------


class _Interrupted(BaseException):
    """Raised inside a handler whose time is up (a BaseException: ``except Exception`` won't eat it)."""


class _Watchdog:
    """One thread that interrupts handlers running past their deadline.

    It raises :class:`_Interrupted` in the handler's thread (``PyThreadState_SetAsyncExc``), which
    Python delivers at the handler's next bytecode: a handler blocked in a C call (a sleep, a
    socket read) stops when that call returns. Lambda would kill it outright; the outcome the
    state sees is the same.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._calls: dict[int, tuple[int, bool]] = {}  # ticket -> (thread id, fired)
        self._seq = 0
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> int:
        with self._cond:
            self._seq += 1
            ticket = self._seq
            self._calls[ticket] = (threading.get_ident(), False)
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lambda-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == ticket:
                self._cond.notify()
            return ticket

    def cancel(self, ticket: int) -> bool:
        """Stop watching; True when the deadline had passed (an interruption may be pending: cleared)."""
        with self._cond:
            thread_id, fired = self._calls.pop(ticket, (0, False))
            if fired:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
            return fired

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._calls:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, ticket = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._cond.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                thread_id, _ = self._calls[ticket]
                self._calls[ticket] = (thread_id, True)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(_Interrupted))


_watchdog = _Watchdog()


# -- importing handlers --------------------------------------------------------------------------

_import_lock = threading.RLock()
# Modules each loaded function imported from its own CodeUri: {function key: {module name: module}}.
_owned: dict[str, dict[str, ModuleType]] = {}


def _inside(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def _import_handler(key: str, fn: Function, env: Mapping[str, str]) -> Handler:
    """Import ``fn.handler`` from its CodeUri, isolated from other functions' copies of the modules."""
    module_name, _, attribute = fn.handler.replace("/", ".").rpartition(".")
    with _import_lock:
        # Another function's modules must not be reused: take them out of sys.modules while this
        # one imports (their objects live on in the handlers that hold them).
        for other, modules in _owned.items():
            if other != key:
                for name, module in modules.items():
                    if sys.modules.get(name) is module:
                        del sys.modules[name]
        before = set(sys.modules)
        root = str(fn.code_uri)
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
        importlib.invalidate_caches()
        try:
            with invocation_environment(env):
                try:
                    module = importlib.import_module(module_name)
                except SyntaxError as exc:
                    raise _lambda_error(
                        "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
                    ) from exc
                except ImportError as exc:
                    raise _lambda_error(
                        "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
                    ) from exc
                except Exception as exc:
                    raise lambda_error(exc) from exc
        finally:
            new = {name: sys.modules[name] for name in set(sys.modules) - before if name in sys.modules}
            _owned[key] = {
                name: module for name, module in new.items() if _inside(getattr(module, "__file__", None), fn.code_uri)
            }
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise _lambda_error("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'")
        return handler  # type: ignore[no-any-return]


# -- the functions -------------------------------------------------------------------------------


class LocalFunction:
    """Something the runner can invoke like a Lambda function: JSON in, JSON out, LambdaError."""

    name: str
    arn: str
    timeout: float | None

    def invoke(self, payload: Any, *, state_timeout: float | None = None) -> Any:
        """Run with a JSON copy of ``payload``; the JSON result, or ``LambdaError``.

        ``state_timeout`` is the Task's TimeoutSeconds: when it is shorter than the function's
        timeout and runs out first, the call ends with ``TaskError("States.Timeout")``.
        """
        raise NotImplementedError


class PythonFunction(LocalFunction):
    """A template function (CodeUri + Handler) or a plain ``handler(event, context)`` callable."""

    def __init__(
        self,
        function: Function,
        *,
        handler: Handler | None = None,
        extra_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.function = function
        self.name = function.name
        self.arn = function.arn
        self.timeout = function.timeout
        self.environment = {**runtime_environment(function), **(extra_environment or {})}
        self._handler = handler
        self._key = f"{function.logical_id}@{function.code_uri}:{function.handler}:{id(self)}"
        self._lock = threading.Lock()
        # One log stream per sandbox, as Lambda names them; request ids shaped like Lambda's UUIDs,
        # unique in the process (a counter is cheaper than uuid4 on a 10,000-item Map).
        self._log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._request_prefix = str(uuid.uuid4())[:24]
        self._requests = itertools.count(1)

    def handler(self) -> Handler:
        """The handler, imported on first use (a failed import is retried next call, as Lambda does)."""
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    self._handler = _import_handler(self._key, self.function, self.environment)
        return self._handler

    def context(self, timeout: float) -> LambdaContext:
        return LambdaContext(
            function_name=self.name,
            function_version="$LATEST",
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.function.memory_size,
            aws_request_id=f"{self._request_prefix}{next(self._requests):012x}",
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name=self._log_stream,
            deadline=time.monotonic() + timeout,
        )

    def invoke(self, payload: Any, *, state_timeout: float | None = None) -> Any:
        handler = self.handler()
        timeout = float(self.timeout or 900.0)
        limit = timeout if state_timeout is None else min(timeout, float(state_timeout))
        event = json.loads(json.dumps(payload))
        context = self.context(timeout)
        # The handler runs in the calling thread (a thread per call costs more than a small
        # handler); the watchdog interrupts it when the time is up.
        overran = False
        ticket = 0
        try:
            with invocation_environment(self.environment):
                ticket = _watchdog.watch(limit)
                try:
                    result = handler(event, context)
                finally:
                    overran = _watchdog.cancel(ticket)
        except _Interrupted:
            _watchdog.cancel(ticket)  # in case it landed before the cancel above
            overran = True
        except (SystemExit, KeyboardInterrupt) as exc:
            raise _lambda_error("Runtime.ExitError", f"RequestId: {context.aws_request_id} Error: exited") from exc
        except Exception as exc:
            if not overran:  # else: the handler turned the interruption into an error of its own
                raise lambda_error(exc) from exc
        if overran:
            if limit < timeout:
                from sfn_workers.local.asl import TaskError

                raise TaskError("States.Timeout", f"the Task's TimeoutSeconds ({limit:g} s) passed")
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            raise _lambda_error(
                "Sandbox.Timedout", f"{stamp} {context.aws_request_id} Task timed out after {timeout:.2f} seconds"
            )
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise _lambda_error("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc


def callable_function(name: str, handler: Handler, *, timeout: float = 900.0) -> PythonFunction:
    """A plain ``handler(event, context)`` as a local function called ``name`` (no template needed)."""
    fn = Function(logical_id=name, name=name, code_uri=Path.cwd(), handler=f"{name}.handler", timeout=timeout)
    local = PythonFunction(fn, handler=handler)
    local.environment = {}
    return local
