"""Task: call a Lambda function or a service integration (optionally waiting for a task token).

The integration itself is the runner's (``Integrations``); this module records the Task and
Lambda events AWS records, applies TimeoutSeconds/HeartbeatSeconds, and turns failures into the
state's errors. Token waits are in tokenwait.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.identity import REGION

from ..errors import StatesError
from ..frame import Engine, StateRun
from ..integrations import LambdaError, LambdaInvocation, TaskError
from ..query import dumps
from ..specs import TaskSpec
from ..tokens import TokenTicket
from .tokenwait import await_token

_log = logging.getLogger("sfn_workers.local")


def run_task(engine: Engine, run: StateRun, spec: TaskSpec, raw: Any) -> tuple[str | None, Any]:
    result = engine.with_retry(run, lambda: _attempt(engine, run, spec, raw))
    return spec.next, spec.query.finish(run, spec.flow, raw, result)


def _number(run: StateRun, spec: TaskSpec, raw: Any, name: str) -> float | None:
    fld, path = (spec.timeout, spec.timeout_path) if name == "TimeoutSeconds" else (spec.heartbeat, spec.heartbeat_path)
    found = None if fld is None and path is None else spec.query.read(run, raw, raw, fld, path)
    if found is None:
        return None
    v = found.value
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise StatesError("States.Runtime", f"The {name} value must be a positive integer, not {_txt(v)}")
    return float(v)


def _txt(v: Any) -> str:
    return v if isinstance(v, str) else dumps(v)


def _attempt(engine: Engine, run: StateRun, spec: TaskSpec, raw: Any) -> Any:
    ticket: TokenTicket | None = None
    if spec.waits_for_token:
        ticket = engine.tokens.issue(engine.wake)
        run.token = ticket.token
        engine.track(ticket, True)
    try:
        timeout = _number(run, spec, raw, "TimeoutSeconds")
        heartbeat = _number(run, spec, raw, "HeartbeatSeconds")
        args = spec.query.arguments(run, spec.flow, raw)
        if _is_lambda_function_arn(spec.resource):
            return _lambda_function(engine, run, spec.resource, args, timeout)
        return _service_task(engine, run, spec.resource, args, (timeout, heartbeat), ticket)
    finally:
        if ticket is not None:
            engine.tokens.close(ticket)
            engine.track(ticket, False)
            run.token = None


def _lambda_function(engine: Engine, run: StateRun, resource: str, payload: Any, timeout: float | None) -> Any:
    history = engine.history
    details: dict[str, Any] = {"resource": resource, "input": run.text(payload), "inputDetails": {"truncated": False}}
    if timeout is not None:
        details["timeoutInSeconds"] = int(timeout)
    run.prev = history.add("LambdaFunctionScheduled", run.prev, details)
    run.prev = history.add("LambdaFunctionStarted", run.prev)
    call = LambdaInvocation(resource, payload, timeout, run.context())
    try:
        result = _call(engine, lambda: engine.integrations.invoke_lambda(call), timeout, run)
    except LambdaError as exc:
        err = StatesError(exc.error_type, _lambda_cause(exc))
        run.prev = history.add("LambdaFunctionFailed", run.prev, {"error": err.error, "cause": err.cause})
        raise err from exc
    except TaskError as exc:
        run.prev = history.add("LambdaFunctionFailed", run.prev, {"error": exc.error, "cause": exc.cause})
        raise StatesError(exc.error, exc.cause) from exc
    except StatesError as err:
        if err.error == "States.Timeout":
            run.prev = history.add("LambdaFunctionTimedOut", run.prev, {"error": err.error})
        raise
    run.prev = history.add(
        "LambdaFunctionSucceeded", run.prev, {"output": run.text(result), "outputDetails": {"truncated": False}}
    )
    return result


def _service_task(
    engine: Engine,
    run: StateRun,
    resource: str,
    params: Any,
    limits: tuple[float | None, float | None],
    ticket: TokenTicket | None,
) -> Any:
    timeout, heartbeat = limits
    history = engine.history
    rtype, rname = _resource_parts(resource)
    base = {"resourceType": rtype, "resource": rname}
    sched: dict[str, Any] = {**base, "region": REGION, "parameters": dumps(params)}
    if timeout is not None:
        sched["timeoutInSeconds"] = int(timeout)
    if heartbeat is not None:
        sched["heartbeatInSeconds"] = int(heartbeat)
    run.prev = history.add("TaskScheduled", run.prev, sched)
    run.prev = history.add("TaskStarted", run.prev, dict(base))
    started = engine.clock.now()
    try:
        if rtype == "lambda" and rname.startswith("invoke"):
            result = _lambda_invoke(engine, run, params, timeout)
        else:
            ctx = run.context()
            result = _call(engine, lambda: engine.integrations.call_service(resource, params, ctx), timeout, run)
        if ticket is not None:
            submitted = {**base, "output": dumps(result), "outputDetails": {"truncated": False}}
            run.prev = history.add("TaskSubmitted", run.prev, submitted)
            result = await_token(engine, run, ticket, started, limits)
    except TaskError as exc:
        run.prev = history.add("TaskFailed", run.prev, {**base, "error": exc.error, "cause": exc.cause})
        raise StatesError(exc.error, exc.cause) from exc
    except StatesError as err:
        if err.error in ("States.Timeout", "States.HeartbeatTimeout"):
            run.prev = history.add("TaskTimedOut", run.prev, {**base, "error": err.error, "cause": err.cause})
        else:
            d = {**base, **{k: v for k, v in (("error", err.error), ("cause", err.cause)) if v is not None}}
            run.prev = history.add("TaskFailed", run.prev, d)
        raise
    run.prev = history.add(
        "TaskSucceeded", run.prev, {**base, "output": run.text(result), "outputDetails": {"truncated": False}}
    )
    return result


def _lambda_invoke(engine: Engine, run: StateRun, params: Any, timeout: float | None) -> Any:
    """``arn:aws:states:::lambda:invoke``: the function's result wrapped as Lambda's Invoke API answers."""
    if not isinstance(params, Mapping) or not isinstance(params.get("FunctionName"), str):
        raise StatesError("States.Runtime", "The lambda:invoke task needs a 'FunctionName' parameter")
    payload = params.get("Payload")
    if isinstance(payload, str):
        with contextlib.suppress(ValueError):
            payload = json.loads(payload)
    call = LambdaInvocation(params["FunctionName"], payload, timeout, run.context())
    try:
        result = _call(engine, lambda: engine.integrations.invoke_lambda(call), timeout, run)
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


def _call(engine: Engine, fn: Callable[[], Any], timeout: float | None, run: StateRun) -> Any:
    """Run an integration call; with the real clock, TimeoutSeconds cuts it short (States.Timeout).

    In virtual time a synchronous call takes no time, so it cannot time out.
    """
    fn = _guarded(fn)
    if timeout is None or engine.clock.virtual:
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
    return dumps(
        {
            "errorMessage": exc.error_message,
            "errorType": exc.error_type,
            "requestId": exc.request_id or str(uuid.uuid4()),
            "stackTrace": exc.stack_trace,
        }
    )
