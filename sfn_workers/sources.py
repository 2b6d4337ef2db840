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
from collections.abc import Mapping
from typing import Any

__all__ = ["CONTEXT_FIELD", "Mode", "Unit", "classify", "split_payload"]

#: Optional field of a payload with the execution and state names, for correlation only.
CONTEXT_FIELD = "sfn_context"


class Mode(enum.Enum):
    DIRECT = "direct"
    CALLBACK = "callback"
    SQS_BATCH = "sqs_batch"


class Unit:
    """One task to run: its payload, its token (callback modes) and correlation names.

    A plain class, not a dataclass: every cold start builds this module, and a dataclass costs
    ~0.3 ms to create (its methods are generated and compiled at import).
    """

    __slots__ = ("execution", "message_id", "payload", "state", "token")

    def __init__(
        self,
        payload: Any,
        token: str | None = None,
        execution: str | None = None,
        state: str | None = None,
        message_id: str | None = None,
    ) -> None:
        self.payload = payload
        self.token = token  # a usable credential: never in a repr
        self.execution = execution
        self.state = state
        self.message_id = message_id  # SQS record id, for batchItemFailures

    def __repr__(self) -> str:
        return (
            f"Unit(payload={self.payload!r}, execution={self.execution!r}, state={self.state!r}, "
            f"message_id={self.message_id!r})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Unit:
            return NotImplemented
        return (self.payload, self.token, self.execution, self.state, self.message_id) == (
            other.payload,
            other.token,
            other.execution,
            other.state,
            other.message_id,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was


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
