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
from dataclasses import dataclass
from typing import Any

__all__ = ["CONTEXT_FIELD", "Mode", "SqsRecord", "Unit", "classify", "split_payload", "sqs_records"]

#: Optional field of a payload with the execution and state names, for correlation only.
CONTEXT_FIELD = "sfn_context"


class Mode(enum.Enum):
    DIRECT = "direct"
    CALLBACK = "callback"
    SQS_BATCH = "sqs_batch"


@dataclass(frozen=True, slots=True)
class Unit:
    """One task to run: its payload, its token (callback modes) and correlation names."""

    payload: Any
    token: str | None = None
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
    """One record of an SQS batch, read for callback mode.

    ``body`` is the parsed JSON body and ``token`` the task token in it; ``problem`` says why the
    record cannot be run as a task (body not JSON, not an object, no token), else None.
    """

    message_id: str | None
    body: Any = None
    token: str | None = None
    problem: str | None = None


def sqs_records(event: Mapping[str, Any], token_field: str) -> list[SqsRecord]:
    """Each record of an SQS event with its JSON body and the token at ``token_field``.

    A state ``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` sends a body such as
    ``{"taskToken.$": "$$.Task.Token", "order.$": "$"}``: the payload is that body less the token
    (see :func:`split_payload`). Malformed records are returned with ``problem`` set, never raised,
    so that one bad record does not stop the others.
    """
    records = []
    for record in event.get("Records") or ():
        message_id = record.get("messageId") if isinstance(record, Mapping) else None
        message_id = message_id if isinstance(message_id, str) and message_id else None
        raw = record.get("body") if isinstance(record, Mapping) else None
        if not isinstance(raw, str):
            records.append(SqsRecord(message_id, problem="the record has no body"))
            continue
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            records.append(SqsRecord(message_id, problem=f"the body is not JSON ({exc.msg} at char {exc.pos})"))
            continue
        except (ValueError, RecursionError):  # nested too deep for the parser
            records.append(SqsRecord(message_id, problem="the body is not JSON this parser can read"))
            continue
        if not isinstance(body, Mapping):
            records.append(SqsRecord(message_id, body, problem="the body is not a JSON object"))
            continue
        token = body.get(token_field)
        if not isinstance(token, str) or not token:
            records.append(SqsRecord(message_id, body, problem=f"the body has no task token at {token_field!r}"))
            continue
        records.append(SqsRecord(message_id, body, token))
    return records
