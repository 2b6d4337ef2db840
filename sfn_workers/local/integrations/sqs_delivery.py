"""An SQS event source mapping of the local runner: a thread that polls one queue and invokes one
function with SQS batches of up to ``BatchSize`` records, deletes what it handled and, with
``ReportBatchItemFailures``, leaves the reported failures on the queue.

While a message that a state sent is on its way to the function, the execution's virtual clock is
held still, so a ``.waitForTaskToken`` task cannot time out in simulated time before its worker
has even run.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.identity import REGION
from sfn_workers.local.integrations.common import Hold, release
from sfn_workers.local.lambdas import LocalFunction
from sfn_workers.local.sam import EventSourceMapping

__all__ = ["SqsDelivery"]

_log = logging.getLogger("sfn_workers.local")


class SqsDelivery:
    """An SQS event source mapping: polls one queue and invokes one function with batches."""

    IDLE_POLL_SECONDS = 1.0
    #: On the virtual clock a failed message comes straight back; the clock waits for this many
    #: redeliveries, then moves on (so a worker that always fails still lets its task time out).
    HELD_REDELIVERIES = 2

    def __init__(
        self,
        client: Any,
        queue_url: str,
        queue_arn: str,
        function: LocalFunction,
        mapping: EventSourceMapping,
        *,
        retry_visibility: int = 0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.mapping = mapping
        self.retry_visibility = retry_visibility
        self.on_error = on_error
        self.batches: list[int] = []  # sizes of the batches delivered (for tests and progress)
        self._holds: dict[str, Hold] = {}  # sent by a state, not yet received
        self._inflight: dict[str, list[Hold]] = {}  # being delivered
        self._finished: OrderedDict[str, None] = OrderedDict()  # recently delivered
        # Failed on the virtual clock: coming straight back, so the clock stays held until it has
        # been delivered again (or the queue no longer gives it, e.g. moved to its dead-letter queue).
        self._retrying: dict[str, list[Hold]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"sqs-esm:{self.function.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            holds, self._holds = list(self._holds.values()), {}
            holds += [h for waiting in self._retrying.values() for h in waiting]
            self._retrying = {}
        for hold in holds:  # release what will never be delivered now
            release(hold)

    def expect(self, message_id: str, hold: Hold) -> None:
        """A state sent ``message_id`` after taking ``hold`` (its clock's registration, counted
        from before the send): released once the function has run on that message."""
        with self._lock:
            if message_id in self._finished:
                late = True
            elif message_id in self._inflight:
                self._inflight[message_id].append(hold)
                late = False
            elif message_id in self._retrying:
                self._retrying[message_id].append(hold)
                late = False
            else:
                self._holds[message_id] = hold
                late = False
        if late:
            release(hold)
        self._wake.set()

    def poke(self) -> None:
        """Poll now (a message was just sent)."""
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no batch is being delivered (the function's invocation has returned).

        A function that reports a task token answers before its invocation ends (its metrics and
        last log lines come after): without this, an execution could be over while its handler still
        writes, into the next test's output. True when idle within ``timeout`` seconds.
        """
        give_up = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._inflight:
                    return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.002)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.IDLE_POLL_SECONDS)
            self._wake.clear()
            while not self._stop.is_set():
                try:
                    messages = self._receive()
                except Exception as exc:
                    self._report(exc)
                    break
                if not messages:
                    self._give_up_retries()
                    break
                self._deliver(messages)
                if len(messages) < self.mapping.batch_size:
                    break  # the queue is drained: wait for the next send (or the idle poll)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.mapping.batch_size:
            asked = min(10, self.mapping.batch_size - len(messages))
            answer = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=asked,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            got = answer.get("Messages") or []
            messages.extend(got)
            if len(got) < asked:
                break  # drained for now: deliver what there is rather than ask an empty queue again
        return messages

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS poller sends."""
        records = []
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message.get("Body", ""),
                    "attributes": dict(message.get("Attributes") or {}),
                    "messageAttributes": {
                        name: {
                            "stringValue": spec.get("StringValue"),
                            "binaryValue": base64.b64encode(spec["BinaryValue"]).decode()
                            if "BinaryValue" in spec
                            else None,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": spec.get("DataType"),
                        }
                        for name, spec in attributes.items()
                    },
                    "md5OfBody": message.get("MD5OfBody"),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
            )
        return {"Records": records}

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        ids = [m["MessageId"] for m in messages]
        receives = {
            m["MessageId"]: int(dict(m.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) for m in messages
        }
        with self._lock:
            for message_id in ids:
                hold = self._holds.pop(message_id, None)
                self._inflight[message_id] = [hold] if hold is not None else []
                self._inflight[message_id] += self._retrying.pop(message_id, [])
        failed: set[str] = set()
        try:
            failed = self._run_batch(messages)
        finally:
            with self._lock:
                holds = []
                for message_id in ids:
                    waiting = self._inflight.pop(message_id, [])
                    if (
                        message_id in failed
                        and self.retry_visibility == 0
                        and receives[message_id] <= self.HELD_REDELIVERIES
                        and not self._stop.is_set()
                    ):
                        self._retrying[message_id] = waiting
                    else:
                        holds += waiting
                        self._finished[message_id] = None
                while len(self._finished) > 10_000:
                    self._finished.popitem(last=False)
            for hold in holds:
                release(hold)

    def _give_up_retries(self) -> None:
        """The queue is empty: failed messages that did not come back will not be delivered."""
        with self._lock:
            holds = [h for waiting in self._retrying.values() for h in waiting]
            self._retrying = {}
        for hold in holds:
            release(hold)

    def _run_batch(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with one batch; the ids of the messages that stay on the queue."""
        self.batches.append(len(messages))
        failed: set[str]
        try:
            response = self.function.invoke(self.event(messages))
        except Exception as exc:
            self._report(exc)
            failed = {m["MessageId"] for m in messages}
        else:
            failed = set()
            if self.mapping.report_batch_item_failures and isinstance(response, Mapping):
                for item in response.get("batchItemFailures") or []:
                    if isinstance(item, Mapping) and item.get("itemIdentifier"):
                        failed.add(str(item["itemIdentifier"]))
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        for message in messages:
            if message["MessageId"] in failed:
                with contextlib.suppress(Exception):
                    self.client.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.retry_visibility,
                    )
        if failed and self.retry_visibility == 0:
            self._stop.wait(0.2)  # a failing batch comes back, but not in a busy loop
            self._wake.set()  # and is received again at once, not at the next idle poll
        return failed

    def _report(self, exc: BaseException) -> None:
        _log.warning("SQS delivery to %s failed: %s", self.function.name, exc)
        if self.on_error is not None:
            self.on_error(exc)
