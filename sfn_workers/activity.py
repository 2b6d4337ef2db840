"""Activity workers: run a ``@task`` handler for Step Functions activity tasks, for work longer than Lambda allows.

``run_activity_worker(activity_arn, handler, workers=N)`` polls GetActivityTask from N threads and
runs each task through the handler's own callback pipeline, as if Lambda had invoked it with the
task token: the input resolved from S3 pointers and validated, heartbeats
(``heartbeat_seconds``), the output offloaded when large, and exactly one outcome per token
(SendTaskSuccess, SendTaskFailure, or the token found closed). Meant for a long-running process
(ECS, Fargate, EC2; see docs/activities.md).

- GetActivityTask errors (throttling, 5xx, a connection refused) are retried with full jitter and a
  retry budget; when the retries run out the poller pauses and polls again: a worker never dies of
  a flaky network.
- SIGTERM or SIGINT (or ``stop``) stops polling. Tasks in flight get ``grace`` seconds to finish;
  those still running are failed with ``WorkerStopped`` (a state's Retry can send them to another
  worker), and a task received while stopping is failed the same way: none is dropped.
- A progress line every ``progress_every`` tasks: tasks done, in flight, polls, errors, tasks/s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sfn_workers import _log
from sfn_workers.context import redact_token
from sfn_workers.errors import CallbackDeliveryError, ConfigurationError, WorkerStopped

__all__ = ["DEFAULT_GRACE_SECONDS", "POLL_READ_TIMEOUT_SECONDS", "WorkerStats", "run_activity_worker"]

#: GetActivityTask holds a poll up to 60 s; the client waits a little longer (AWS advises 65 s).
POLL_READ_TIMEOUT_SECONDS = 70.0
#: How long in-flight tasks may run on after a stop before they are failed with WorkerStopped.
DEFAULT_GRACE_SECONDS = 30.0
#: GetActivityTask retries (calls in all), full-jitter scale and cap, and the pause after they run out.
POLL_ATTEMPTS = 4
POLL_BASE_S = 0.2
POLL_CAP_S = 5.0


@dataclass
class WorkerStats:
    """What a worker did: returned by :func:`run_activity_worker`, and in its progress lines."""

    polls: int = 0
    empty_polls: int = 0
    poll_errors: int = 0
    taken: int = 0
    done: int = 0
    undeliverable: int = 0
    stopped: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def line(self, in_flight: int) -> str:
        rate = self.done / max(1e-9, time.monotonic() - self.started)
        return (
            f"activity worker: {self.done} done ({self.undeliverable} undeliverable, {self.stopped} stopped), "
            f"{in_flight} in flight, {self.polls} polls ({self.empty_polls} empty, {self.poll_errors} failed), "
            f"{rate:.1f} tasks/s"
        )


class _Worker:
    """The pollers and in-flight tasks of one run_activity_worker call."""

    poller: Any
    options: dict[str, Any]

    def __init__(self, activity_arn: str, handler: Any, stop: threading.Event, options: dict[str, Any]) -> None:
        task = getattr(handler, "task", None)
        if task is None or not hasattr(task, "token_field"):
            raise ConfigurationError("run_activity_worker needs a @task handler (a function decorated with @task)")
        self.activity_arn = activity_arn
        self.task = task
        self.stop = stop
        self.grace: float = options["grace"]
        self.progress_every: int = options["progress_every"]
        self.name: str = options["worker_name"] or f"{socket.gethostname()}-{os.getpid()}"
        self.poller = options["poller"]
        self.logger = _log.get_logger()
        self.stats = WorkerStats()
        self.in_flight: dict[str, float] = {}  # token -> when it started
        self._lock = threading.Condition()
        from sfn_workers.retries import RetryBudget

        self.budget = RetryBudget()

    # -- polling

    def poll_loop(self, index: int) -> None:
        worker_name = f"{self.name}-{index}"
        while not self.stop.is_set():
            task = self._poll(worker_name)
            if task is None:
                continue
            token, input_text = task
            if self.stop.is_set():  # received while stopping: answer it, never drop it
                self._fail_stopped(token, "the worker was stopping when the task arrived")
                continue
            self._run(token, input_text)

    def _pause(self, seconds: float) -> None:
        """The retry policy's sleep: a stop ends it (no further poll is made after a stop)."""
        if self.stop.wait(seconds):
            raise _Stopping

    def _poll(self, worker_name: str) -> tuple[str, str] | None:
        from sfn_workers.retries import retry

        policy = retry(
            attempts=POLL_ATTEMPTS,
            base=POLL_BASE_S,
            cap=POLL_CAP_S,
            jitter="full",
            budget=self.budget,
            sleep=self._pause,
        )
        self.stats.add(polls=1)
        try:
            answer = policy.call(
                lambda: self.poller.get_activity_task(activityArn=self.activity_arn, workerName=worker_name)
            )
        except _Stopping:
            return None  # stopped while waiting to poll again: nothing was taken
        except Exception as exc:
            self.stats.add(poll_errors=1)
            pause = random.uniform(POLL_CAP_S / 2, POLL_CAP_S)
            self.logger.error(f"GetActivityTask failed; polling again in {pause:.1f} s", extra={"reason": str(exc)})
            self.stop.wait(pause)
            return None
        token = answer.get("taskToken")
        if not token:
            self.stats.add(empty_polls=1)
            return None
        return str(token), str(answer.get("input") or "{}")

    # -- running one task

    def _run(self, token: str, input_text: str) -> None:
        from sfn_workers.callbacks import run_callback
        from sfn_workers.report import report_failure

        with self._lock:
            self.in_flight[token] = time.monotonic()
        self.stats.add(taken=1)
        try:
            event = _event(input_text, self.task.token_field, token)
            if event is None:
                report_failure(token, "ValidationError", "the activity input is not a JSON object")
            else:
                run_callback(self.task, event, None)
            self.stats.add(done=1)
        except CallbackDeliveryError as exc:
            # The state's HeartbeatSeconds/TimeoutSeconds end it; its Retry sends it to a worker again.
            self.stats.add(undeliverable=1)
            self.logger.error(
                "no outcome could be delivered", extra={"task_token": redact_token(token), "reason": str(exc)}
            )
        finally:
            with self._lock:
                self.in_flight.pop(token, None)
                self._lock.notify_all()
        if self.progress_every and self.stats.taken % self.progress_every == 0:
            self.logger.info(self.stats.line(len(self.in_flight)))

    def _fail_stopped(self, token: str, why: str) -> None:
        from sfn_workers.report import report_failure

        self.stats.add(stopped=1)
        try:
            report_failure(token, WorkerStopped(why))
        except CallbackDeliveryError as exc:
            self.logger.error(
                "WorkerStopped not delivered", extra={"task_token": redact_token(token), "reason": str(exc)}
            )

    # -- stopping

    def drain(self) -> None:
        """After a stop: wait up to ``grace`` for in-flight tasks, then fail the rest with WorkerStopped."""
        give_up = time.monotonic() + self.grace
        with self._lock:
            self._lock.wait_for(lambda: not self.in_flight, timeout=max(0.0, give_up - time.monotonic()))
            left = list(self.in_flight)
        for token in left:
            self._fail_stopped(token, f"the worker was stopped and the task did not finish within {self.grace:g} s")
        self.logger.info(self.stats.line(len(left)) + " (stopped)")


class _Stopping(Exception):
    """Raised from the poll retries' sleep when the worker is stopped."""


def _event(input_text: str, token_field: str, token: str) -> dict[str, Any] | None:
    """The callback event the handler would get from Lambda: the input with the token in its field."""
    try:
        value = json.loads(input_text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {**value, token_field: token}


def run_activity_worker(
    activity_arn: str,
    handler: Callable[..., Any],
    *,
    workers: int = 1,
    stop: threading.Event | None = None,
    grace: float = DEFAULT_GRACE_SECONDS,
    progress_every: int = 100,
    worker_name: str | None = None,
    client: Any = None,
) -> WorkerStats:
    """Poll ``activity_arn`` from ``workers`` threads and run ``handler`` (a ``@task``) on each task.

    Blocks until ``stop`` is set or the process gets SIGTERM/SIGINT (handled only when called from
    the main thread), then stops as the module says and returns the :class:`WorkerStats`.
    ``client``: the Step Functions client to poll with (default: one with a read timeout above the
    60 s poll); answers go through the handler's own clients, as in Lambda.
    """
    if workers < 1:
        raise ConfigurationError(f"workers must be at least 1, not {workers}")
    stop = stop or threading.Event()
    if client is None:
        from sfn_workers._aws import polling_client

        client = polling_client("stepfunctions", POLL_READ_TIMEOUT_SECONDS)
    options = {"grace": grace, "progress_every": progress_every, "worker_name": worker_name, "poller": client}
    worker = _Worker(activity_arn, handler, stop, options)
    restore = _on_signals(stop)
    threads = [
        threading.Thread(target=worker.poll_loop, args=(i,), name=f"sfn-workers-activity-{i}", daemon=True)
        for i in range(workers)
    ]
    try:
        for thread in threads:
            thread.start()
        worker.logger.info(f"activity worker: polling {activity_arn} with {workers} worker(s)")
        stop.wait()
        worker.drain()
        # A poll between retries ends at once; one waiting on GetActivityTask gets the grace period
        # (a task it is handed after the stop is failed with WorkerStopped, see poll_loop).
        give_up = time.monotonic() + grace
        for thread in threads:
            thread.join(max(0.0, give_up - time.monotonic()))
    finally:
        stop.set()
        restore()
    return worker.stats


def _on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (main thread only); returns what restores the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
