"""What every Task integration shares: the parsed resource, one call's arguments, AWS-shaped results."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sfn_workers.local.asl.integrations import TaskError

__all__ = [
    "PATTERNS",
    "PREFIX",
    "Call",
    "Hold",
    "Integration",
    "json_text",
    "parse_resource",
    "plain",
    "release",
    "runtime_error",
    "sdk_metadata",
]

PREFIX = "arn:aws:states:::"
#: The integration patterns a Resource may end with (request-response has none).
PATTERNS = (".waitForTaskToken", ".sync:2", ".sync")

Hold = Callable[[], Any]  # what VirtualClock.hold() returns: entering and leaving it releases the hold


def release(hold: Hold) -> None:
    with hold():
        pass


def parse_resource(resource: str) -> tuple[str, str, str]:
    """``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` -> ("sqs", "sendMessage", ".waitForTaskToken")."""
    if not resource.startswith(PREFIX):
        raise ValueError(f"not a service integration: {resource}")
    rest = resource[len(PREFIX) :]
    pattern = ""
    for suffix in PATTERNS:
        if rest.endswith(suffix):
            rest, pattern = rest[: -len(suffix)], suffix
            break
    service, _, action = rest.rpartition(":")
    return service, action, pattern


@dataclass(slots=True)
class Call:
    """One Task state's call of an integration.

    ``service``/``action``/``pattern`` come from the Resource (``aws-sdk:s3``, ``getObject``, ``""``);
    ``context`` is the state's ``$$`` object; ``hold`` (the execution clock's, when virtual) keeps
    simulated time still while work the state started elsewhere has not happened yet.
    """

    resource: str
    service: str
    action: str
    pattern: str
    parameters: dict[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict)
    hold: Callable[[], Hold] | None = None


class Integration(Protocol):
    """One service's Task integration (``sns``, ``aws-sdk``, ``http``...)."""

    def __call__(self, call: Call) -> Any:
        """The Task's result; raises :class:`TaskError` with AWS's error name on failure."""
        ...


def runtime_error(message: str) -> TaskError:
    """``States.Runtime``: the call cannot be made at all (a wrong parameter, an unknown action)."""
    return TaskError("States.Runtime", message)


def plain(value: Any) -> Any:
    """A botocore response as JSON: blobs as text, timestamps as ISO 8601, no ResponseMetadata."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "read") and callable(value.read):  # StreamingBody
        return plain(value.read())
    return value


def sdk_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SdkHttpMetadata``/``SdkResponseMetadata`` that optimised integrations add to a result."""
    meta = response.get("ResponseMetadata") or {}
    headers = {str(k): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": meta.get("HTTPStatusCode", 200),
        },
        "SdkResponseMetadata": {"RequestId": meta.get("RequestId") or str(uuid.uuid4())},
    }


def json_text(value: Any) -> Any:
    """A JSON object given where AWS wants text (an SQS body, an SNS message) is sent as its JSON text."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
