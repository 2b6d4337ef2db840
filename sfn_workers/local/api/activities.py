"""Activity actions: CreateActivity, DescribeActivity, ListActivities, DeleteActivity, GetActivityTask.

The activities live in the :class:`~sfn_workers.local.activities.ActivityStore` of the backend's
token broker, where activity Task states queue their tasks. GetActivityTask long-polls: it waits up
to the store's ``poll_seconds`` (60, as on AWS) for a task and then answers with none, so workers
set their client's read timeout above that (AWS advises 65 s).
"""

from __future__ import annotations

from typing import Any

from sfn_workers._limits import ARN_MAX_CHARS
from sfn_workers.local.activities import Activity, ActivityStore, UnknownActivity, activities_for
from sfn_workers.local.api.backend import Action, Backend
from sfn_workers.local.api.models import epoch
from sfn_workers.local.api.protocol import ApiError, ApiRequest, Page, arn_parts, check_name

__all__ = ["ACTIONS"]

NAME_MAX_CHARS = 80
WORKER_NAME_MAX_CHARS = 80
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100


def store(backend: Backend) -> ActivityStore:
    return activities_for(backend.tokens)


def _activity(backend: Backend, request: dict[str, Any]) -> Activity:
    r = ApiRequest(request)
    activity_arn = r.required_text("activityArn", high=ARN_MAX_CHARS)
    r.check()
    arn_parts(activity_arn, ("activity",))
    try:
        return store(backend).get(activity_arn)
    except UnknownActivity:
        raise ApiError("ActivityDoesNotExist", f"Activity Does Not Exist: '{activity_arn}'") from None


def create_activity(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    name = r.required_text("name", high=NAME_MAX_CHARS)
    r.check()
    check_name(name)
    activity = store(backend).create(name)
    return {"activityArn": activity.arn, "creationDate": epoch(activity.created)}


def describe_activity(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    activity = _activity(backend, request)
    return {"activityArn": activity.arn, "name": activity.name, "creationDate": epoch(activity.created)}


def list_activities(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    limit = r.number("maxResults", low=0, high=MAX_RESULTS) or DEFAULT_RESULTS
    token = r.text("nextToken", low=1, high=1024)
    r.check()
    start = Page.position("activities", token) or 0
    found = store(backend).all()
    page = found[start : start + limit]
    answer: dict[str, Any] = {
        "activities": [{"activityArn": a.arn, "name": a.name, "creationDate": epoch(a.created)} for a in page]
    }
    if start + limit < len(found):
        answer["nextToken"] = Page.token("activities", start + limit)
    return answer


def delete_activity(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    activity_arn = r.required_text("activityArn", high=ARN_MAX_CHARS)
    r.check()
    arn_parts(activity_arn, ("activity",))
    store(backend).delete(activity_arn)
    return {}


def get_activity_task(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
    r = ApiRequest(request)
    activity_arn = r.required_text("activityArn", high=ARN_MAX_CHARS)
    r.text("workerName", low=1, high=WORKER_NAME_MAX_CHARS)
    r.check()
    arn_parts(activity_arn, ("activity",))
    try:
        task = store(backend).take(activity_arn)
    except UnknownActivity:
        raise ApiError("ActivityDoesNotExist", f"Activity Does Not Exist: '{activity_arn}'") from None
    if task is None:
        return {}
    token, input_text = task
    return {"taskToken": token, "input": input_text}


ACTIONS: dict[str, Action] = {
    "CreateActivity": create_activity,
    "DescribeActivity": describe_activity,
    "ListActivities": list_activities,
    "DeleteActivity": delete_activity,
    "GetActivityTask": get_activity_task,
}
