"""ValidateStateMachineDefinition and tags through boto3 against ``sfn-workers serve``: AWS's shapes
(from the installed botocore model) and error codes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sfn_workers.local.api.server import start_server
from sfn_workers.local.identity import ACCOUNT_ID, REGION

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/local"
GOOD = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})


@pytest.fixture(scope="module")
def sfn() -> Iterator[Any]:
    server = start_server(None, port=0, virtual_time=True)
    try:
        yield boto3.client(
            "stepfunctions",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )
    finally:
        server.close(grace=5)


def code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def new_machine(sfn: Any) -> str:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    return str(sfn.create_state_machine(name=name, definition=GOOD, roleArn=ROLE)["stateMachineArn"])


def test_validate_a_good_definition_is_ok_with_no_diagnostics(sfn: Any) -> None:
    answer = sfn.validate_state_machine_definition(definition=GOOD)

    assert (answer["result"], answer["diagnostics"], answer["truncated"]) == ("OK", [], False)


def test_validate_a_broken_definition_fails_with_a_located_diagnostic(sfn: Any) -> None:
    broken = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})

    answer = sfn.validate_state_machine_definition(definition=broken, type="STANDARD")

    assert answer["result"] == "FAIL"
    (found,) = answer["diagnostics"]
    assert found["severity"] == "ERROR"
    assert found["code"] == "MISSING_TRANSITION_TARGET"
    assert found["location"] == "/States/A/Next"
    assert "Nowhere" in found["message"]


def test_validate_refuses_a_bad_request_as_aws_does(sfn: Any) -> None:
    assert code(lambda: sfn.validate_state_machine_definition(definition=GOOD, severity="INFO")) == (
        "ValidationException"
    )


def test_tags_are_added_replaced_listed_and_removed(sfn: Any) -> None:
    arn = new_machine(sfn)

    sfn.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "shop"}, {"key": "env", "value": "dev"}])
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "test"}])
    listed = sfn.list_tags_for_resource(resourceArn=arn)["tags"]
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    after = sfn.list_tags_for_resource(resourceArn=arn)["tags"]

    assert sorted((t["key"], t["value"]) for t in listed) == [("env", "test"), ("team", "shop")]
    assert after == [{"key": "env", "value": "test"}]


def test_tag_errors_have_awss_codes(sfn: Any) -> None:
    arn = new_machine(sfn)
    missing = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:nope"
    fifty_one = [{"key": f"k{i}", "value": "v"} for i in range(51)]

    assert code(lambda: sfn.list_tags_for_resource(resourceArn=missing)) == "ResourceNotFound"
    assert code(lambda: sfn.tag_resource(resourceArn="arn:aws:s3:::bucket", tags=[])) == "InvalidArn"
    assert code(lambda: sfn.tag_resource(resourceArn=arn, tags=fifty_one)) == "TooManyTags"
