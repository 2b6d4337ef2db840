"""AWS JSON 1.0, the Step Functions API's wire protocol: requests in, answers and error shapes out.

This is the protocol half of the local API (moto's ``responses.py``); what the actions do is the
backend's (:mod:`.backend`, moto's ``models.py``). Nothing here knows about state machines: it reads
``X-Amz-Target`` and the JSON body, validates members as the API model constrains them (worded as
the service words it), parses JSON documents carried as strings (execution input) as strictly as AWS,
and turns an :class:`ApiError` into the ``{"__type", "message"}`` answer botocore expects.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.token_backend import ApiError

__all__ = [
    "CONTENT_TYPE",
    "DROP",
    "MAX_JSON_DEPTH",
    "TARGET_PREFIX",
    "ApiError",
    "ApiRequest",
    "DropConnection",
    "Handler",
    "Page",
    "arn_parts",
    "check_name",
    "dispatch",
    "error_answer",
    "parse_document",
]

_log = logging.getLogger("sfn_workers.local.api")

TARGET_PREFIX = "AWSStepFunctions."
CONTENT_TYPE = "application/x-amz-json-1.0"
#: Nesting depth of a JSON document (execution input) the local API accepts; deeper is refused with
#: the action's input error instead of exhausting Python's recursion limit later.
MAX_JSON_DEPTH = 512

#: ``handler(request) -> response``: one API action, raising :class:`ApiError` for an error answer.
Handler = Callable[[dict[str, Any]], dict[str, Any]]

# AWS: names may not contain whitespace, brackets, wildcards, these special characters or control characters.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>[A-Za-z]+):(?P<rest>.+)$"
)


#: The status of an answer that is not sent: the connection is closed instead (a scripted fault).
DROP = -1


class DropConnection(Exception):
    """Raised by a ``before`` hook of :func:`dispatch`: close the connection without answering."""


def error_answer(error: ApiError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of an error answer (botocore reads ``__type`` as Error.Code)."""
    return error.status, {"__type": error.code, "message": error.message}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeded(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` outside strings (checked before parsing, so the
    parser never recurses that deep)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_document(text: str, *, limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document as AWS's API does: NaN/Infinity are not JSON, depth is bounded.

    Raises ValueError with a short reason (the caller wraps it in its action's error code).
    """
    if text.count("[") + text.count("{") > limit and _depth_exceeded(text, limit):
        raise ValueError(f"the JSON document is nested deeper than {limit} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # pragma: no cover - guarded by the depth check
        raise ValueError(f"the JSON document is nested deeper than {limit} levels") from None


def dispatch(
    handlers: Mapping[str, Handler], target: str, raw: bytes, *, before: Callable[[str, dict[str, Any]], None] | None
) -> tuple[str, Any, int, dict[str, Any]]:
    """Serve one request: ``(action, request, status, body)``. Never raises: a bad request gets AWS's
    error answer, a bug in a handler a logged 500 InternalFailure. ``before(action, request)`` runs
    after parsing (e.g. scripted faults) and may raise :class:`ApiError` or :class:`DropConnection`
    (status :data:`DROP`)."""
    action = "?"
    request: Any = None
    try:
        if not target.startswith(TARGET_PREFIX):
            raise ApiError("UnknownOperationException", f"missing or unknown X-Amz-Target {target[:100]!r}")
        action = target[len(TARGET_PREFIX) :]
        try:
            request = parse_document(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            raise ApiError("SerializationException", "the request body is not valid JSON") from None
        if not isinstance(request, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        handler = handlers.get(action)
        if handler is None:
            raise ApiError("UnknownOperationException", f"unknown operation {action[:100]!r}")
        if before is not None:
            before(action, request)
        response = handler(request)
    except ApiError as exc:
        return (action, request, *error_answer(exc))
    except DropConnection:
        return action, request, DROP, {}
    except Exception:  # a bug in a handler must not take the server down
        _log.exception("local Step Functions API: %s failed", action)
        return action, request, 500, {"__type": "InternalFailure", "message": "internal error"}
    return action, request, 200, response if isinstance(response, dict) else {}


# -- request validation ----------------------------------------------------------------------------


def _too_long(name: str, high: int) -> str:
    return f"Value at '{name}' failed to satisfy constraint: Member must have length less than or equal to {high}"


def _too_short(name: str, low: int) -> str:
    return f"Value at '{name}' failed to satisfy constraint: Member must have length greater than or equal to {low}"


class ApiRequest:
    """Typed access to one AWS JSON request's members; constraint violations are reported together,
    worded as the service words them, by :meth:`check`."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.problems: list[str] = []

    def text(self, name: str, *, required: bool = False, low: int = 0, high: int, utf8: bool = False) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.problems.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
            return None
        if not isinstance(value, str):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected a string")
        size = len(value.encode("utf-8")) if utf8 and len(value) * 4 > high else len(value)
        if size > high:
            self.problems.append(_too_long(name, high))
        elif size < low:
            self.problems.append(_too_short(name, low))
        return value

    def required_text(self, name: str, *, low: int = 1, high: int, utf8: bool = False) -> str:
        """A required string member ('' when missing: :meth:`check` then refuses the request)."""
        return self.text(name, required=True, low=low, high=high, utf8=utf8) or ""

    def number(self, name: str, *, low: int, high: int) -> int | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected an integer")
        if value > high:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value less than or "
                f"equal to {high}"
            )
        elif value < low:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value greater than or "
                f"equal to {low}"
            )
        return value

    def flag(self, name: str) -> bool | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected a boolean")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(name, high=1000)
        if value is not None and value not in allowed:
            self.problems.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(allowed)}]"
            )
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError("SerializationException", f"Unexpected value type for '{name}': expected an object")
        return value

    def check(self) -> None:
        if self.problems:
            count = len(self.problems)
            raise ApiError(
                "ValidationException",
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(self.problems),
            )


def check_name(name: str) -> None:
    """A state machine or execution name as AWS accepts it (else InvalidName)."""
    if not name or _BAD_NAME.search(name):
        raise ApiError("InvalidName", f"Invalid Name: '{name}'")


def arn_parts(arn: str, kinds: tuple[str, ...]) -> tuple[str, str, str, str]:
    """``(region, account, resource type, rest)`` of a Step Functions ARN of one of ``kinds`` (else InvalidArn)."""
    match = _ARN.match(arn)
    if match is None or match["kind"] not in kinds:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    return match["region"], match["account"], match["kind"], match["rest"]


class Page:
    """Opaque, checked pagination tokens: which listing they belong to and where it continues."""

    @staticmethod
    def token(listing: str, position: int) -> str:
        raw = json.dumps({"l": listing, "p": position}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def position(listing: str, token: str | None) -> int | None:
        if token is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if isinstance(data, dict) and data.get("l") == listing and isinstance(data.get("p"), int):
                return int(data["p"])
        except (binascii.Error, ValueError):
            pass
        raise ApiError("InvalidToken", "Invalid Token: 'Invalid pagination token'")
