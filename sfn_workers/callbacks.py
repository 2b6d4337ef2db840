"""Task-token callbacks: every token handed to a worker gets exactly one reported outcome.

A worker that received a task token and never called SendTaskSuccess or SendTaskFailure leaves its
execution waiting until the state's TimeoutSeconds (a year by default). Each token therefore runs
under a :class:`Callback`, which ends in exactly one of:

* SendTaskSuccess accepted (the function returned; its output validated, offloaded if large);
* SendTaskFailure accepted (the function raised, even a ``BaseException`` such as ``SystemExit``,
  which is re-raised afterwards; or the watchdog fired ``timeout_margin_ms`` before the Lambda's
  end and reported ``WorkerTimeout``);
* the token found closed (TaskTimedOut, TaskDoesNotExist, InvalidToken): logged, not retried;
* no outcome deliverable: :class:`~sfn_workers.errors.CallbackDeliveryError` leaves the handler
  (direct ``waitForTaskToken``) or the record is listed in ``batchItemFailures`` (SQS), so Lambda's
  or SQS's own retries and dead-letter handling keep the event.

One guard per token decides who reports: the main thread (the function's result), the watchdog, or
a heartbeat that learnt the task is closed. The first to claim it owns the outcome; the others drop
theirs with a log line. Heartbeats never start once the outcome is claimed, and the outcome is sent
after any heartbeat in flight has been answered. The Send* calls are retried on throttling, 5xx and
connection errors with full jitter, inside the Lambda's remaining time (``sfn_workers.retries``).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import inspect
import sys
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sfn_workers import _log, _metrics
from sfn_workers._botocore import is_output_refused, is_token_closed
from sfn_workers.config import STATES_PAYLOAD_LIMIT
from sfn_workers.context import Deadline, redact_token
from sfn_workers.errors import (
    CallbackDeliveryError,
    OutputValidationError,
    PayloadTooLarge,
    WorkerTimeout,
    describe,
    error_name,
)
from sfn_workers.sources import Unit

if TYPE_CHECKING:
    from sfn_workers._aws import Clients
    from sfn_workers.models import Output
    from sfn_workers.retries import RetryEvent
    from sfn_workers.task import Task

__all__ = ["Callback", "Delivery", "count_metric", "run_callback", "send"]

#: Send* retries stop this long before the Lambda's end, leaving time to return or raise.
END_RESERVE_S = 0.05
#: Calls in all (the first included) for SendTaskSuccess/Failure; the deadline usually ends it first.
SEND_ATTEMPTS = 10
#: Calls in all for one heartbeat: a missed heartbeat is not fatal, the next one follows.
HEARTBEAT_ATTEMPTS = 3
#: Full-jitter scale and cap for Send* retries (seconds): U(0, min(cap, base * 2**n)).
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
#: Longest wait for a heartbeat in flight before the outcome is sent anyway.
QUIET_WAIT_S = 2.0


class Delivery(enum.Enum):
    """How the attempt to report one token's outcome ended."""

    SENT = "sent"  # SendTaskSuccess or SendTaskFailure accepted
    CLOSED = "closed"  # the task was closed already: nothing left to report to
    UNDELIVERABLE = "undeliverable"  # no outcome could be reported: the event must be retried
    HANDED_OFF = "handed_off"  # ctx.hand_off(): whoever holds the token reports the outcome


# -- the once-only guard -----------------------------------------------------------------------


class _Guard:
    """Exactly one outcome per token, shared by the main thread, the watchdog and heartbeats.

    ``claim(owner)`` succeeds once; the owner then reports and calls ``settle``. Heartbeats
    register while in flight so that the outcome is sent after their answer, never before it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self.owner: str | None = None
        self.delivery: Delivery | None = None
        self.settled = threading.Event()

    def claim(self, owner: str) -> bool:
        with self._cond:
            if self.owner is not None:
                return False
            self.owner = owner
            return True

    def begin_heartbeat(self) -> bool:
        with self._cond:
            if self.owner is not None:
                return False
            self._in_flight += 1
            return True

    def end_heartbeat(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def wait_quiet(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def settle(self, delivery: Delivery) -> Delivery:
        self.delivery = delivery
        self.settled.set()
        return delivery


# -- one token ---------------------------------------------------------------------------------


def count_metric(name: str, **dimensions: str) -> None:
    """Count one event in CloudWatch (EMF); never raises."""
    with contextlib.suppress(Exception):  # a metric must never cost an outcome
        _metrics.count(name, **dimensions)


class Callback:
    """Runs one unit of work for one task token and reports its outcome exactly once."""

    def __init__(
        self,
        task: Task[Any, Any],
        token: str,
        lambda_context: Any,
        log_keys: Mapping[str, str] | None = None,
        margin_ms: float | None = None,
    ) -> None:
        self.task = task
        self.token = token
        self.lambda_context = lambda_context
        self.logger = task.logger
        self.guard = _Guard()
        remaining_ms, margin = task.margin_ms(lambda_context)
        # An SQS batch passes the margin decided at the invocation's start, for all its records.
        self.margin_ms = margin if margin_ms is None else margin_ms
        #: When the Lambda will be stopped (``time.monotonic()`` seconds), or None outside Lambda.
        self.end = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000.0
        self.problem = ""  # why the outcome could not be delivered, for CallbackDeliveryError
        self._stop = threading.Event()
        self._worker: int | None = None
        self.handed_off = False
        self._log_keys: dict[str, Any] = {"task_token": redact_token(token), **(log_keys or {})}

    # -- the run

    def run(self, unit_of: Callable[[], Unit]) -> Delivery:
        """Run the work and report it; re-raises a BaseException that is not an Exception.

        Every line logged meanwhile, the reports included, carries the unit's correlation keys.
        """
        unit: Unit | None = None
        problem: Exception | None = None
        try:
            unit = unit_of()
        except Exception as exc:
            problem = exc
        keys = self.task.correlation_keys(unit, self.lambda_context, **self._log_keys)
        with _log.correlated(self.logger, keys):
            return self._run(unit, problem)

    def _run(self, unit: Unit | None, problem: Exception | None) -> Delivery:
        self._worker = threading.get_ident()
        self._start_threads()
        try:
            try:
                if unit is None:
                    raise problem or ValueError("no unit of work")
                output = self.task.process(
                    unit,
                    self.lambda_context,
                    heartbeat=self.heartbeat,
                    hand_off=self._hand_off,
                    margin_ms=self.margin_ms,
                )
            except BaseException as exc:
                delivery = self._report_failure(exc)
                if not isinstance(exc, Exception):
                    raise  # SystemExit, KeyboardInterrupt...: reported, and then on their way
                return delivery
            if self.handed_off:
                return self._report_handed_off(output)
            return self._report_success(output)
        finally:
            # Wake the threads and close the guard; they end as soon as they are scheduled, holding
            # no work (a late watchdog or heartbeat finds the outcome taken). Not joined: that would
            # only add their wake-up to the invocation's billed time.
            self._stop.set()
            self.guard.claim("ended")

    def _start_threads(self) -> None:
        if self.end is not None:
            self._spawn("sfn-workers-watchdog", self._watch, self.end - self.margin_ms / 1000.0)
        interval = self.task.settings.heartbeat_seconds
        if interval:
            self._spawn("sfn-workers-heartbeat", self._beat_every, interval)

    def _spawn(self, name: str, target: Callable[[float], None], arg: float) -> None:
        # A copy of this thread's context: the thread's lines carry this invocation's keys.
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(target, arg), name=name, daemon=True)
        thread.start()

    # -- outcomes of the main thread

    def _report_success(self, output: Output) -> Delivery:
        if not self.guard.claim("main"):
            return self._dropped("returned")
        self.guard.wait_quiet(QUIET_WAIT_S)
        try:
            self._call("SendTaskSuccess", SEND_ATTEMPTS, taskToken=self.token, output=output.text)
        except Exception as exc:
            if is_output_refused(exc):
                # Not an outcome: report why instead of leaving the task open.
                refusal: Exception
                if output.size > STATES_PAYLOAD_LIMIT:
                    refusal = PayloadTooLarge(f"Step Functions refused the output of {output.size} bytes: {exc}")
                else:
                    refusal = OutputValidationError(f"Step Functions refused the output: {exc}")
                self.logger.error("SendTaskSuccess refused the output; reporting a failure instead", extra=self._keys())
                return self.guard.settle(self._send_failure(refusal))
            return self.guard.settle(self._not_sent("SendTaskSuccess", exc))
        count_metric("CallbackSuccess")
        self.logger.info("task succeeded; SendTaskSuccess accepted", extra=self._keys(output_bytes=output.size))
        return self.guard.settle(Delivery.SENT)

    def _hand_off(self) -> None:
        self.handed_off = True
        self.logger.info("task handed off: the token's holder reports the outcome", extra=self._keys())

    def _report_handed_off(self, output: Output) -> Delivery:
        """Returned after ``ctx.hand_off()``: send nothing, unless it returned a value by mistake."""
        if output.value is not None:
            # A value would be silently lost (the holder answers); fail loudly instead.
            return self._report_failure(
                OutputValidationError(
                    "the function returned a value after ctx.hand_off(); a handed-off task must return "
                    "None (whoever holds the token reports the outcome)"
                )
            )
        if not self.guard.claim("main"):
            return self._dropped("returned after hand_off")
        count_metric("CallbackHandedOff")
        return self.guard.settle(Delivery.HANDED_OFF)

    def _report_failure(self, exc: BaseException) -> Delivery:
        if not self.guard.claim("main"):
            return self._dropped("raised " + error_name(exc))
        self.logger.error(
            "task failed; reporting SendTaskFailure", extra=self._keys(error=error_name(exc)), exc_info=exc
        )
        self.guard.wait_quiet(QUIET_WAIT_S)
        return self.guard.settle(self._send_failure(exc))

    def _dropped(self, what: str) -> Delivery:
        """The function ended after another thread took the outcome: wait for it, drop this one."""
        left = None if self.end is None else max(0.0, self.end - time.monotonic())
        self.guard.settled.wait(timeout=left)
        owner = self.guard.owner
        reason = (
            "after the watchdog reported WorkerTimeout"
            if owner == "watchdog"
            else "after Step Functions said the task is closed"
        )
        self.logger.warning(f"the function {what} {reason}: its result is dropped", extra=self._keys())
        delivery = self.guard.delivery or Delivery.UNDELIVERABLE
        if delivery is Delivery.UNDELIVERABLE and not self.problem:
            self.problem = f"the {owner} could not report the outcome in time"
        return delivery

    # -- sending

    def _send_failure(self, exc: BaseException) -> Delivery:
        try:
            error, cause = describe(exc)
        except Exception:  # never: describe copes with any exception; a report must go out anyway
            error, cause = error_name(exc), ""
        try:
            self._call("SendTaskFailure", SEND_ATTEMPTS, taskToken=self.token, error=error, cause=cause)
        except Exception as refused:
            return self._not_sent("SendTaskFailure", refused)
        count_metric("CallbackFailure", error=error)
        self.logger.info("SendTaskFailure accepted", extra=self._keys(error=error))
        return Delivery.SENT

    def _not_sent(self, action: str, exc: Exception) -> Delivery:
        if is_token_closed(exc):
            count_metric("CallbackTokenClosed")
            self.logger.warning(
                f"{action} answered that the task is closed already (timed out, or its execution ended): "
                "nothing to report to",
                extra=self._keys(reason=str(exc)),
            )
            return Delivery.CLOSED
        count_metric("CallbackUndeliverable")
        self.problem = f"{action} failed: {exc}"
        self.logger.error(
            f"{action} could not be delivered: the event will be retried by Lambda or SQS",
            extra=self._keys(reason=str(exc)),
        )
        return Delivery.UNDELIVERABLE

    def _call(self, action: str, attempts: int, **params: Any) -> Any:
        """One Send* call, retried on transient errors inside the Lambda's remaining time."""
        deadline = None if self.end is None else Deadline(self.end - END_RESERVE_S)
        return send(self.task.clients, action, attempts, deadline, **params)

    def _keys(self, **extra: Any) -> dict[str, Any]:
        return {**self._log_keys, **extra}

    # -- the watchdog

    def _watch(self, fire_at: float) -> None:
        # Create the client now, while the function runs: on a cold start that takes a good part
        # of a second, which the watchdog will not have to spare when it fires.
        with contextlib.suppress(Exception):
            self.task.clients.get("stepfunctions", remaining=self.margin_ms / 1000.0)
        if self._stop.wait(max(0.0, fire_at - time.monotonic())):
            return  # the invocation ended in time
        if not self.guard.claim("watchdog"):
            return
        margin = round(self.margin_ms)
        count_metric("WatchdogFired")
        timeout = WorkerTimeout(
            f"the function was still running {margin} ms before the Lambda timeout; its result, if it comes, is dropped"
        )
        stack = self._worker_stack()
        if stack is not None:
            timeout = timeout.with_traceback(stack)  # the cause shows where the function was
        self.logger.error(
            "watchdog: reporting WorkerTimeout before the Lambda times out", extra=self._keys(margin_ms=margin)
        )
        self.guard.wait_quiet(min(QUIET_WAIT_S, margin / 2000.0))
        self.guard.settle(self._send_failure(timeout))

    def _worker_stack(self) -> types.TracebackType | None:
        """The running function's stack as a traceback, from the task function down."""
        frame = sys._current_frames().get(self._worker) if self._worker is not None else None
        frames = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        frames.reverse()  # outermost first
        code = getattr(inspect.unwrap(self.task.fn), "__code__", None)
        for index, candidate in enumerate(frames):
            if candidate.f_code is code:
                frames = frames[index:]
                break
        tb: types.TracebackType | None = None
        for candidate in reversed(frames):
            tb = types.TracebackType(tb, candidate, candidate.f_lasti, candidate.f_lineno)
        return tb

    # -- heartbeats

    def heartbeat(self) -> None:
        """``ctx.heartbeat()``: send one now; raise WorkerTimeout if the task is over."""
        if self.guard.owner in ("watchdog", "closed"):
            raise WorkerTimeout("the task is over (timed out or closed): stop the work")
        if self._beat() is Delivery.CLOSED:
            raise WorkerTimeout(
                "Step Functions answered the heartbeat with TaskTimedOut: the task is closed "
                "(its HeartbeatSeconds or TimeoutSeconds passed); stop the work"
            )

    def _beat_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._beat() is Delivery.CLOSED or self.guard.owner is not None:
                return

    def _beat(self) -> Delivery | None:
        """Send one heartbeat unless the outcome is taken; CLOSED if the task turned out closed."""
        if not self.guard.begin_heartbeat():
            return None
        try:
            self._call("SendTaskHeartbeat", HEARTBEAT_ATTEMPTS, taskToken=self.token)
        except Exception as exc:
            if not is_token_closed(exc):
                self.logger.warning("heartbeat not delivered; the work goes on", extra=self._keys(reason=str(exc)))
                return None
            if self.guard.claim("closed"):
                count_metric("CallbackTokenClosed")
                self.logger.error(
                    "heartbeat answered TaskTimedOut: the task is closed; stopping the work "
                    "(ctx.heartbeat() raises WorkerTimeout, the function's result will be dropped)",
                    extra=self._keys(reason=str(exc)),
                )
                self.guard.settle(Delivery.CLOSED)
            return Delivery.CLOSED
        finally:
            self.guard.end_heartbeat()
        count_metric("Heartbeats")
        return Delivery.SENT


_SNAKE = {
    "SendTaskSuccess": "send_task_success",
    "SendTaskFailure": "send_task_failure",
    "SendTaskHeartbeat": "send_task_heartbeat",
}


def send(clients: Clients, action: str, attempts: int, deadline: Deadline | None, **params: Any) -> Any:
    """One SendTask* call, retried with full jitter on throttling, 5xx and connection errors.

    Shared by the decorator and :mod:`sfn_workers.report`, so a token answered later gets the same
    delivery as one answered on return. No retry sleeps past ``deadline``.
    """
    from sfn_workers.retries import retry

    policy = retry(
        attempts=attempts,
        base=RETRY_BASE_S,
        cap=RETRY_CAP_S,
        jitter="full",
        deadline=deadline,
        budget=None,  # reporting an outcome is never starved by user calls draining the budget
        observer=lambda event: _log_retry(action, event),
    )

    def call() -> Any:
        # Its timeouts end by the deadline: a hanging endpoint cannot hold the report past it.
        left = None if deadline is None else deadline.remaining()
        return getattr(clients.get("stepfunctions", remaining=left), _SNAKE[action])(**params)

    return policy.call(call)


def _log_retry(action: str, event: RetryEvent) -> None:
    from sfn_workers.retries import RetryEvent, log_retry

    # Named after the API action rather than botocore's generated method.
    log_retry(RetryEvent(event.outcome, action, event.attempt, event.delay, event.reason, event.exception))


# -- entry points ------------------------------------------------------------------------------


def run_callback(task: Task[Any, Any], event: Any, lambda_context: Any) -> None:
    """Callback mode (``lambda:invoke.waitForTaskToken``): run the event, report its outcome.

    Returns None once an outcome is reported or the task found closed; raises
    :class:`CallbackDeliveryError` when no outcome could be reported, so that Lambda retries.
    """
    token = event[task.token_field]
    if not token:
        count_metric("CallbackUndeliverable")
        task.logger.error(f"the event's {task.token_field!r} is empty: no task to report to")
        raise CallbackDeliveryError(f"the event's {task.token_field!r} is an empty string, not a task token")
    callback = Callback(task, token, lambda_context)
    delivery = callback.run(lambda: task.unit_of(event))
    if delivery is Delivery.UNDELIVERABLE:
        raise CallbackDeliveryError(
            f"no outcome could be reported for task token {redact_token(token)}: {callback.problem}"
        )
