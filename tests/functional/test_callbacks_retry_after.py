"""A throttled SendTask* whose Retry-After no clock can reach is retried like any other throttle.

Over real HTTP to the project's strict SendTask* endpoint: the endpoint answers a
ThrottlingException; a botocore hook adds the header to that answer, as an overloaded front end
might. Before, computing the date raised OverflowError out of the retry loop, and callback mode
gave up after one call with CallbackDeliveryError.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from sfn_workers import task
from sfn_workers._aws import Clients
from sfn_workers.local.sfn_endpoint import Fault, MemoryTokens, SfnEndpoint
from tests.lambda_context import FakeLambdaContext

FAR = "Fri, 31 Dec 999999999999 23:59:59 GMT"

pytestmark = pytest.mark.usefixtures("no_threads_left_behind")


def clients_adding_retry_after(value: str) -> Clients:
    session = boto3.session.Session()

    def add_header(response_dict: dict[str, Any], **_: Any) -> None:
        if response_dict["status_code"] >= 400:
            response_dict["headers"]["Retry-After"] = value

    session.events.register("before-parse.sfn.SendTaskSuccess", add_header)
    clients = Clients()
    clients._session = session
    return clients


def test_a_throttle_with_an_unreachable_retry_after_date_is_retried_and_delivered(
    tokens: MemoryTokens, sfn_endpoint: SfnEndpoint
) -> None:
    # GIVEN a callback task and SendTaskSuccess throttled once, with Retry-After in year 999,999,999,999
    token = tokens.issue()
    sfn_endpoint.inject("SendTaskSuccess", Fault.throttle(), times=1)

    @task(offload=False, clients=clients_adding_retry_after(FAR))
    def handler(order: dict[str, str]) -> dict[str, bool]:
        return {"ok": True}

    # WHEN it runs
    handler({"orderId": "o-1", "taskToken": token}, FakeLambdaContext(20))
    # THEN the throttle was retried and the success delivered, once
    assert tokens.outcome(token).kind == "success"
    assert [c.code for c in sfn_endpoint.calls_of("SendTaskSuccess")] == ["ThrottlingException", None]
