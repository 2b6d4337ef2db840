"""SQS batch events: each record's body and the task token in it (only SQS batch mode reads these).

A module of its own so that a direct or callback invocation's cold start does not build them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SqsRecord", "is_fifo", "sqs_records"]


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
