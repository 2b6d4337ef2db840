"""TagResource, UntagResource, ListTagsForResource on the state machines the server knows,
with AWS's limits: at most 50 tags, keys 1-128 and values 0-256 characters."""

from __future__ import annotations

import threading
from typing import Any

from sfn_workers._limits import ARN_MAX_CHARS
from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.protocol import ApiError, ApiRequest, arn_parts

__all__ = ["ACTIONS", "MAX_TAGS", "Tags"]

MAX_TAGS = 50


class Tags:
    """The tags of each resource ARN (one per backend)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.by_arn: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    def known(self, arn: str) -> str:
        """``arn`` if it names a state machine the server has (InvalidArn, ResourceNotFound)."""
        arn_parts(arn, ("stateMachine", "activity"))
        with self.backend.lock:
            exists = arn in self.backend.machines
        if not exists:
            raise ApiError("ResourceNotFound", f"Resource not found: '{arn}'")
        return arn


def _arn(r: ApiRequest) -> str:
    return r.required_text("resourceArn", high=ARN_MAX_CHARS)


def _list(request: dict[str, Any], name: str) -> list[Any]:
    value = request.get(name)
    if not isinstance(value, list):
        raise ApiError(
            "ValidationException",
            f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: "
            "Member must not be null",
        )
    return value


def tag_resource(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    arn = _arn(r)
    r.check()
    given: dict[str, str] = {}
    for tag in _list(request, "tags"):
        key, value = (tag.get("key"), tag.get("value", "")) if isinstance(tag, dict) else (None, None)
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise ApiError("ValidationException", f"1 validation error detected: invalid tag {tag!r}")
        given[key] = value
    tags = backend.component(Tags)
    tags.known(arn)
    with tags.lock:
        merged = {**tags.by_arn.get(arn, {}), **given}
        if len(merged) > MAX_TAGS:
            raise ApiError("TooManyTags", f"Too many tags: a resource has at most {MAX_TAGS} tags ({arn})")
        tags.by_arn[arn] = merged
    return {}


def untag_resource(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    arn = _arn(r)
    r.check()
    keys = [k for k in _list(request, "tagKeys") if isinstance(k, str)]
    tags = backend.component(Tags)
    tags.known(arn)
    with tags.lock:
        kept = {k: v for k, v in tags.by_arn.get(arn, {}).items() if k not in keys}
        tags.by_arn[arn] = kept
    return {}


def list_tags_for_resource(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    arn = _arn(r)
    r.check()
    tags = backend.component(Tags)
    tags.known(arn)
    with tags.lock:
        found = dict(tags.by_arn.get(arn, {}))
    return {"tags": [{"key": k, "value": v} for k, v in found.items()]}


ACTIONS: dict[str, Action] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
