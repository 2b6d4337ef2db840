"""Event shapes, and which mode each one selects.

| event                                             | mode     |
|---------------------------------------------------|----------|
| ``Records`` whose ``eventSource`` is ``aws:sqs``  | SQS batch: one callback task per record |
| an object with a token at ``token_field``         | callback (``lambda:invoke.waitForTaskToken``) |
| anything else                                     | direct   |

Whatever the mode, a payload may carry ``sfn_context`` (``{"execution": ..., "state": ...}``,
filled in the state machine from ``$$.Execution.Name`` and ``$$.State.Name``): it is taken out
before validation and used to correlate logs, traces and offloaded object keys.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONTEXT_FIELD", "Mode", "SqsRecord", "Unit", "classify", "is_fifo", "split_payload", "sqs_records"]

#: Optional field of a payload with the execution and state names, for correlation only.
CONTEXT_FIELD = "sfn_context"


class Mode(enum.Enum):
    DIRECT = "direct"
    CALLBACK = "callback"
    SQS_BATCH = "sqs_batch"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a warm call ~2 us
class Unit:
    """One task to run: its payload, its token (callback modes) and correlation names."""

    payload: Any
    token: str | None = field(default=None, repr=False)  # a usable credential: never in a repr
    execution: str | None = None
    state: str | None = None
    message_id: str | None = None  # SQS record id, for batchItemFailures


def is_sqs_batch(event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    records = event.get("Records")
    if records is None:
        return False
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def classify(event: Any, token_field: str) -> Mode:
    # ``type(...) is dict`` first: what the Lambda runtime hands over, and much cheaper than an ABC check.
    if type(event) is dict and "Records" not in event and type(event.get(token_field)) is not str:
        return Mode.DIRECT  # the warm direct path: two lookups
    if type(event) is dict or isinstance(event, Mapping):
        if is_sqs_batch(event):
            return Mode.SQS_BATCH
        if isinstance(event.get(token_field), str):
            return Mode.CALLBACK
    return Mode.DIRECT


def split_payload(event: Any, token_field: str, payload_field: str | None) -> Unit:
    """Separate a direct or callback event into token, correlation names and the payload proper.

    Raises ``KeyError`` naming ``payload_field`` when the event does not have it.
    """
    if type(event) is not dict and not isinstance(event, Mapping):
        return Unit(payload=event)
    token = event.get(token_field)
    token = token if isinstance(token, str) else None
    context = event.get(CONTEXT_FIELD)
    execution = state = None
    if isinstance(context, Mapping):
        execution = _name(context.get("execution"))
        state = _name(context.get("state"))
    if payload_field is not None:
        if payload_field not in event:
            raise KeyError(payload_field)
        payload = event[payload_field]
    elif token is None and context is None:
        payload = event  # the common direct case: no copy
    else:
        payload = {k: v for k, v in event.items() if k != token_field and k != CONTEXT_FIELD}
    return Unit(payload=payload, token=token, execution=execution, state=state)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class SqsRecord:
    """One record of an SQS batch.

    ``body`` is the parsed JSON body (the body text itself when it is not JSON) and ``token`` the
    task token in it, or None for a plain message (run as in direct mode); ``problem`` says why the
    record cannot be run at all (it has no body), else None.
    """

    message_id: str | None
    body: Any = field(default=None, repr=False)  # holds the token too
    token: str | None = field(default=None, repr=False)
    problem: str | None = None


def is_fifo(event: Mapping[str, Any]) -> bool:
    """The batch comes from a FIFO queue (its records' ``eventSourceARN`` ends in ``.fifo``)."""
    for record in event.get("Records") or ():
        arn = record.get("eventSourceARN") if isinstance(record, Mapping) else None
        if isinstance(arn, str) and arn.endswith(".fifo"):
            return True
    return False


def _parse_body(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or nested too deep): the text is the payload
        return raw


def sqs_records(event: Mapping[str, Any], token_field: str) -> list[SqsRecord]:
    """Each record of an SQS event with its body and the token at ``token_field``, if any.

    A state ``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` sends a body such as
    ``{"taskToken.$": "$$.Task.Token", "order.$": "$"}``: the payload is that body less the token
    (see :func:`split_payload`). A record without a body is returned with ``problem`` set, never
    raised, so that one bad record does not stop the others.
    """
    records = []
    for record in event.get("Records") or ():
        message_id = record.get("messageId") if isinstance(record, Mapping) else None
        message_id = message_id if isinstance(message_id, str) and message_id else None
        raw = record.get("body") if isinstance(record, Mapping) else None
        if not isinstance(raw, str):
            records.append(SqsRecord(message_id, problem="the record has no body"))
            continue
        body = _parse_body(raw)
        token = body.get(token_field) if isinstance(body, Mapping) else None
        if token is not None and (not isinstance(token, str) or not token):
            # A token field that holds no token: a state machine fault, not a plain message.
            records.append(SqsRecord(message_id, body, problem=f"the body's {token_field!r} is not a task token"))
            continue
        records.append(SqsRecord(message_id, body, token))
    return records
