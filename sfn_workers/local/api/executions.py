"""Execution actions: StartExecution, StartSyncExecution, DescribeExecution, StopExecution, ListExecutions,
GetExecutionHistory."""

from __future__ import annotations

from typing import Any

from sfn_workers._limits import ARN_MAX_CHARS, CAUSE_MAX_CHARS, ERROR_MAX_CHARS, PAYLOAD_MAX_BYTES
from sfn_workers.local.api.backend import EXPRESS_MAX_SECONDS, Action, Backend
from sfn_workers.local.api.machines import MAX_RESULTS, NAME_MAX_CHARS
from sfn_workers.local.api.models import STATUSES, ExecutionRecord, epoch, now
from sfn_workers.local.api.protocol import ApiError, ApiRequest, Page, check_name, parse_document
from sfn_workers.local.api.retention import HISTORY_DROPPED, Retention

__all__ = ["ACTIONS", "describe"]

DEFAULT_RESULTS = 100
#: How much longer than an Express execution's limit StartSyncExecution waits for one stuck in user code.
_SYNC_GRACE_SECONDS = 5


def _start(backend: Backend, request: dict[str, Any], *, sync: bool) -> ExecutionRecord:
    r = ApiRequest(request)
    machine_arn, _, test_case = r.required_text("stateMachineArn", high=ARN_MAX_CHARS).partition("#")
    name = r.text("name", low=1, high=NAME_MAX_CHARS)
    input_text = r.text("input", high=PAYLOAD_MAX_BYTES, utf8=True)
    trace = r.text("traceHeader", high=256)
    r.check()
    if name is not None:
        check_name(name)
    machine = backend.machine(machine_arn)
    if sync and not machine.express:
        raise ApiError("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
    input_text = "{}" if input_text is None else input_text
    try:
        value = parse_document(input_text)
    except ValueError as exc:
        raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from None
    return backend.start(machine, name, input_text, value, trace, test_case=test_case or None)


def start_execution(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    run = _start(backend, request, sync=False)
    return {"executionArn": run.arn, "startDate": epoch(run.start)}


def start_sync_execution(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    """Answers when the execution ends: at the latest at Express's 5-minute limit (its TimeoutSeconds,
    on the execution's clock), or a few real seconds later for one stuck in user code."""
    run = _start(backend, request, sync=True)
    if not run.done.wait(EXPRESS_MAX_SECONDS + _SYNC_GRACE_SECONDS):
        backend.abort(run, "States.Timeout", "The execution exceeded the Express 5-minute limit", status="TIMED_OUT")
    answer = describe(run)
    for key in ("redriveCount", "redriveStatus", "redriveStatusReason"):
        answer.pop(key, None)
    duration = (run.stop or run.start) - run.start
    answer["billingDetails"] = {
        "billedMemoryUsedInMB": 64,
        "billedDurationInMilliseconds": max(100, int(duration.total_seconds() * 1000)),
    }
    return answer


def describe(run: ExecutionRecord) -> dict[str, Any]:
    """DescribeExecution's answer (call under the backend's lock, or on a closed run)."""
    input_text, output_text = Retention.io(run)
    answer: dict[str, Any] = {
        "executionArn": run.arn,
        "stateMachineArn": run.machine.arn,
        "name": run.name,
        "status": run.status,
        "startDate": epoch(run.start),
        "input": input_text,
        "inputDetails": {"included": True},
    }
    if run.stop is not None:
        answer["stopDate"] = epoch(run.stop)
    if output_text is not None:
        answer["output"] = output_text
        answer["outputDetails"] = {"included": True}
    for key, value in (("error", run.error), ("cause", run.cause), ("traceHeader", run.trace_header)):
        if value is not None:
            answer[key] = value
    answer["redriveCount"] = 0
    answer["redriveStatus"] = "NOT_REDRIVABLE"
    if run.history_dropped:
        answer["redriveStatusReason"] = HISTORY_DROPPED
    return answer


def _execution_arn(request: dict[str, Any]) -> str:
    r = ApiRequest(request)
    execution_arn = r.required_text("executionArn", high=ARN_MAX_CHARS)
    r.check()
    return execution_arn


def describe_execution(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    run = backend.run(_execution_arn(request))
    with backend.lock:
        return describe(run)


def stop_execution(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    execution_arn = r.required_text("executionArn", high=ARN_MAX_CHARS)
    error = r.text("error", high=ERROR_MAX_CHARS)
    cause = r.text("cause", high=CAUSE_MAX_CHARS)
    r.check()
    run = backend.run(execution_arn)
    backend.abort(run, error, cause)
    run.done.wait(2.0)  # usually enough for the history to end with ExecutionAborted
    return {"stopDate": epoch(run.stop or now())}


def list_executions(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    machine_arn = r.text("stateMachineArn", low=1, high=ARN_MAX_CHARS)
    status = r.choice("statusFilter", STATUSES)
    limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
    token = r.text("nextToken", low=1, high=3096)
    r.text("mapRunArn", low=1, high=2000)
    r.check()
    if machine_arn is None:
        raise ApiError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN")
    machine = backend.machine(machine_arn)
    listing = f"executions:{machine.arn}:{status or ''}"
    before = Page.position(listing, token)
    with backend.lock:
        runs = [
            run
            for run in reversed(machine.runs.values())
            if (before is None or run.seq < before) and (status is None or run.status == status)
        ]
    page = runs[:limit]
    items = []
    for run in page:
        item: dict[str, Any] = {
            "executionArn": run.arn,
            "stateMachineArn": machine.arn,
            "name": run.name,
            "status": run.status,
            "startDate": epoch(run.start),
        }
        if run.stop is not None:
            item["stopDate"] = epoch(run.stop)
        items.append(item)
    answer: dict[str, Any] = {"executions": items}
    if len(runs) > limit:
        answer["nextToken"] = Page.token(listing, page[-1].seq)
    return answer


def history(backend: Backend, execution_arn: str) -> list[dict[str, Any]]:
    """The events of an execution so far (timestamps as epoch seconds; a summary once dropped)."""
    run = backend.run(execution_arn)
    with backend.lock:
        return Retention.history(run)


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("input", "output", "parameters", "inputDetails")}
        out[key] = value
    return out


def get_execution_history(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    execution_arn = r.required_text("executionArn", high=ARN_MAX_CHARS)
    limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
    reverse = bool(r.flag("reverseOrder"))
    include_data = r.flag("includeExecutionData")
    token = r.text("nextToken", low=1, high=3096)
    r.check()
    listing = f"history:{execution_arn}:{int(reverse)}"
    start = Page.position(listing, token) or 0
    events = history(backend, execution_arn)
    if reverse:
        events.reverse()
    page = events[start : start + limit]
    if include_data is False:
        page = [_without_data(event) for event in page]
    answer: dict[str, Any] = {"events": page}
    if start + limit < len(events):
        answer["nextToken"] = Page.token(listing, start + limit)
    return answer


ACTIONS: dict[str, Action] = {
    "StartExecution": start_execution,
    "StartSyncExecution": start_sync_execution,
    "DescribeExecution": describe_execution,
    "StopExecution": stop_execution,
    "ListExecutions": list_executions,
    "GetExecutionHistory": get_execution_history,
}
