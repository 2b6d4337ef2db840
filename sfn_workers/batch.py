"""SQS batches: each record is a unit of work; the answer is the partial batch response.

A record carrying a task token (``sqs:sendMessage.waitForTaskToken``) runs in callback mode: its
outcome is reported to Step Functions, and the record is listed in ``batchItemFailures`` only when
no outcome could be delivered. A plain record (no token) runs as in direct mode: listed when the
function raises, so SQS delivers it again and its redrive policy moves it to a dead-letter queue
after ``maxReceiveCount`` receives. A record without a body, or one not started because the
Lambda's time ran out, is listed too.

A FIFO queue's batch (``eventSourceARN`` ending in ``.fifo``) keeps its order: processing stops at
the first listed record, and every later record is listed with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sfn_workers import _log
from sfn_workers.callbacks import Callback, Delivery, count_metric
from sfn_workers.errors import error_name
from sfn_workers.sqs import SqsRecord, is_fifo, sqs_records

if TYPE_CHECKING:
    from sfn_workers.sources import Unit
    from sfn_workers.task import Task

__all__ = ["run_batch"]


def run_batch(task: Task[Any, Any], event: Any, lambda_context: Any) -> dict[str, Any]:
    """Run an SQS batch; returns ``{"batchItemFailures": [...]}`` (``ReportBatchItemFailures``)."""
    records = sqs_records(event, task.token_field)
    fifo = is_fifo(event)
    remaining_ms, margin_ms = task.margin_ms(lambda_context)
    end = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000.0
    failed: list[str] = []
    for index, record in enumerate(records):
        message_id = record.message_id or ""  # "" makes Lambda retry the whole batch: nothing is lost
        if _run_record(task, record, message_id, lambda_context, end, margin_ms):
            continue
        failed.append(message_id)
        if fifo:
            rest = [later.message_id or "" for later in records[index + 1 :]]
            if rest:
                task.logger.warning(
                    f"FIFO batch: stopping at the first failure; {len(rest)} later record(s) are left for "
                    "redelivery, in order",
                    extra={"message_id": message_id},
                )
            failed.extend(rest)
            break
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _run_record(
    task: Task[Any, Any], record: SqsRecord, message_id: str, lambda_context: Any, end: float | None, margin_ms: float
) -> bool:
    """Run one record; False when it must be listed in batchItemFailures."""
    keys = task.correlation_keys(None, lambda_context, message_id=message_id)
    if record.problem is not None:
        count_metric("CallbackUndeliverable")
        with _log.correlated(task.logger, keys):
            task.logger.error(f"SQS record cannot be run: {record.problem}")
        return False
    if end is not None and end - time.monotonic() <= margin_ms / 1000.0:
        with _log.correlated(task.logger, keys):
            task.logger.warning("SQS record not started: too little time left; SQS will redeliver it")
        return False
    if record.token is None:
        return _run_plain(task, record, message_id, lambda_context)
    callback = Callback(task, record.token, lambda_context, log_keys={"message_id": message_id}, margin_ms=margin_ms)
    unit_of = lambda: _with_message_id(task.unit_of(record.body), message_id)  # noqa: E731
    return callback.run(unit_of) is not Delivery.UNDELIVERABLE


def _with_message_id(unit: Unit, message_id: str) -> Unit:
    unit.message_id = message_id  # a fresh Unit of this record: nothing else holds it
    return unit


def _run_plain(task: Task[Any, Any], record: SqsRecord, message_id: str, lambda_context: Any) -> bool:
    """A record without a task token: run as in direct mode; False if the function raised."""
    try:
        unit = _with_message_id(task.unit_of(record.body), message_id)
    except Exception as exc:  # the body does not fit (payload_field missing)
        with _log.correlated(task.logger, task.correlation_keys(None, lambda_context, message_id=message_id)):
            task.logger.error(f"SQS record cannot be run: {exc}", extra={"error": error_name(exc)})
        return False
    with _log.correlated(task.logger, task.correlation_keys(unit, lambda_context, message_id=message_id)):
        try:
            task.process(unit, lambda_context)
        except Exception as exc:
            task.logger.error(
                "SQS record failed; SQS will redeliver it", extra={"error": error_name(exc)}, exc_info=exc
            )
            return False
    return True
