"""Activities: the task queues that activity workers poll (GetActivityTask), shared by executions and the API.

An activity Task state (``Resource: arn:aws:states:<region>:<account>:activity:NAME``) waits for a
task token like a ``.waitForTaskToken`` state; what it schedules is put on its activity's queue,
where a worker takes it with GetActivityTask and answers with SendTaskSuccess/Failure/Heartbeat.

There is one :class:`ActivityStore` per token broker (:func:`activities_for`): the executions that
issue tokens from a broker and the API actions answering for it see the same activities, without
either knowing the other. Taking a task counts as its first heartbeat (AWS starts the
HeartbeatSeconds clock when a worker picks the task up, not while it waits in the queue: a queued
task is kept alive with a heartbeat every ``KEEP_QUEUED_ALIVE_S``), and a
task whose token was closed meanwhile (its TimeoutSeconds passed, its execution ended) is dropped
instead of handed out.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sfn_workers.local.identity import arn

__all__ = ["DEFAULT_POLL_SECONDS", "Activity", "ActivityStore", "UnknownActivity", "activities_for", "is_activity"]

#: How long GetActivityTask waits for a task before answering with none (AWS: 60 seconds).
DEFAULT_POLL_SECONDS = 60.0
#: How often a queued task is kept alive: its HeartbeatSeconds (at least 1) only count once taken.
KEEP_QUEUED_ALIVE_S = 0.4


def is_activity(resource: str) -> bool:
    """An activity ARN as a Task's Resource."""
    parts = resource.split(":")
    return len(parts) == 7 and parts[:3] == ["arn", "aws", "states"] and parts[5] == "activity"


class UnknownActivity(KeyError):
    """No activity has this ARN (ActivityDoesNotExist)."""


@dataclass
class Activity:
    name: str
    arn: str
    created: datetime
    queue: deque[tuple[str, str]] = field(default_factory=deque)  # (token, input JSON)


class ActivityStore:
    """The activities and their queued tasks; thread-safe, with long polling.

    ``broker`` (an ``asl.TokenBroker``) is told of each task taken (a heartbeat) and asked whether
    a queued task is still open.
    """

    def __init__(self, broker: Any = None, poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        # Weak: the store is kept in a WeakKeyDictionary under its broker, which a strong reference
        # from here would keep alive for the whole process.
        self._broker: Callable[[], Any] | None = None if broker is None else weakref.ref(broker)
        self.poll_seconds = poll_seconds
        self._changed = threading.Condition()
        self._activities: dict[str, Activity] = {}
        self._closed = False
        self._keeper: threading.Thread | None = None

    def create(self, name: str) -> Activity:
        """The activity ``name`` (created once; creating it again returns it, as AWS does)."""
        activity_arn = arn("states", f"activity:{name}")
        with self._changed:
            found = self._activities.get(activity_arn)
            if found is None:
                found = self._activities[activity_arn] = Activity(name, activity_arn, datetime.now(UTC))
            return found

    def get(self, activity_arn: str) -> Activity:
        with self._changed:
            found = self._activities.get(activity_arn)
        if found is None:
            raise UnknownActivity(activity_arn)
        return found

    def all(self) -> list[Activity]:
        with self._changed:
            return sorted(self._activities.values(), key=lambda a: a.created)

    def delete(self, activity_arn: str) -> None:
        with self._changed:
            self._activities.pop(activity_arn, None)
            self._changed.notify_all()

    def schedule(self, activity_arn: str, token: str, input_text: str) -> None:
        """Queue a task for the activity's workers; UnknownActivity if there is no such activity."""
        with self._changed:
            found = self._activities.get(activity_arn)
            if found is None:
                raise UnknownActivity(activity_arn)
            found.queue.append((token, input_text))
            self._changed.notify_all()
            if self._broker is not None and (self._keeper is None or not self._keeper.is_alive()):
                self._keeper = threading.Thread(target=self._keep_alive, name="sfn-activities-keepalive", daemon=True)
                self._keeper.start()

    def _keep_alive(self) -> None:
        """Heartbeat the queued tasks until none is left; drop those whose token was closed."""
        while True:
            with self._changed:
                if self._closed or not any(a.queue for a in self._activities.values()):
                    self._keeper = None
                    return
                for activity in self._activities.values():
                    open_tasks = [task for task in activity.queue if self._started(task[0])]
                    activity.queue.clear()
                    activity.queue.extend(open_tasks)
            time.sleep(KEEP_QUEUED_ALIVE_S)

    def take(self, activity_arn: str, wait: float | None = None) -> tuple[str, str] | None:
        """The next open task of the activity, waiting up to ``wait`` seconds (default ``poll_seconds``)."""
        give_up = time.monotonic() + (self.poll_seconds if wait is None else wait)
        with self._changed:
            while True:
                found = self._activities.get(activity_arn)
                if found is None:
                    raise UnknownActivity(activity_arn)
                while found.queue:
                    token, input_text = found.queue.popleft()
                    if self._started(token):
                        return token, input_text
                left = give_up - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._changed.wait(left)

    def _started(self, token: str) -> bool:
        """Tell the broker the task was picked up (a heartbeat); False if its token is closed."""
        broker = self._broker() if self._broker is not None else None
        if broker is None:
            return self._broker is None  # no broker given: every task is open; a broker gone: none is
        try:
            broker.send_task_heartbeat(token)
        except Exception:  # TaskTimedOut, TaskDoesNotExist, InvalidToken: nobody waits for it any more
            return False
        return True

    def close(self) -> None:
        """Answer every waiting GetActivityTask now (with no task)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


_stores: weakref.WeakKeyDictionary[Any, ActivityStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def activities_for(broker: Any) -> ActivityStore:
    """The activity store of the executions that issue tokens from ``broker``."""
    with _stores_lock:
        store = _stores.get(broker)
        if store is None:
            store = _stores[broker] = ActivityStore(broker)
        return store
