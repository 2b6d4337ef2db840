"""ValidateStateMachineDefinition and tags through boto3 against ``sfn-workers serve``: AWS's shapes
(from the installed botocore model) and error codes."""

from __future__ import annotations

import json
import time
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
            # TestState's "sync-" host prefix cannot be put in front of 127.0.0.1
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
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


# -- TestState ---------------------------------------------------------------------------------------

TASK = {
    "Type": "Task",
    "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
    "Parameters": {"Bucket": "b", "Key.$": "$.key"},
    "ResultSelector": {"body.$": "$.Body"},
    "Retry": [{"ErrorEquals": ["S3.NoSuchKeyException"], "MaxAttempts": 2}],
    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
    "Next": "Done",
}


def test_state_runs_a_pass_state_and_names_the_next_state(sfn: Any) -> None:
    state = {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "Report"}

    answer = sfn.test_state(definition=json.dumps(state), input=json.dumps({"a": 2, "b": 3}))

    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"sum": 5}
    assert answer["nextState"] == "Report"
    assert "inspectionData" not in answer  # INFO shows none


def test_state_with_a_mocked_result_and_debug_inspection(sfn: Any) -> None:
    answer = sfn.test_state(
        definition=json.dumps(TASK),
        input=json.dumps({"key": "k"}),
        inspectionLevel="DEBUG",
        mock={"result": json.dumps({"Body": "hello"})},
    )

    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"body": "hello"}
    assert answer["nextState"] == "Done"
    data = answer["inspectionData"]
    assert json.loads(data["input"]) == {"key": "k"}
    assert json.loads(data["afterParameters"]) == {"Bucket": "b", "Key": "k"}
    assert json.loads(data["result"]) == {"Body": "hello"}


def test_state_error_matching_a_retrier_is_retriable_then_caught(sfn: Any) -> None:
    failing = {"errorOutput": {"error": "S3.NoSuchKeyException", "cause": "gone"}}

    given = json.dumps({"key": "k"})
    first = sfn.test_state(definition=json.dumps(TASK), input=given, mock=failing)
    last = sfn.test_state(
        definition=json.dumps(TASK), input=given, mock=failing, stateConfiguration={"retrierRetryCount": 2}
    )

    assert (first["status"], first["error"], first["cause"]) == ("RETRIABLE", "S3.NoSuchKeyException", "gone")
    assert "nextState" not in first
    assert last["status"] == "CAUGHT_ERROR"
    assert last["nextState"] == "Recover"
    assert json.loads(last["output"])["error"]["Error"] == "S3.NoSuchKeyException"


def test_state_of_a_whole_machine_by_name_with_variables(sfn: Any) -> None:
    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "Greet",
        "States": {
            "Greet": {"Type": "Pass", "Output": "{% 'hi ' & $who %}", "End": True},
        },
    }

    answer = sfn.test_state(definition=json.dumps(machine), stateName="Greet", variables=json.dumps({"who": "ada"}))

    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == "hi ada"


def test_state_fail_and_bad_requests(sfn: Any) -> None:
    failed = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "Nope", "Cause": "because"}))

    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Nope", "because")
    assert code(lambda: sfn.test_state(definition="{not json")) == "InvalidDefinition"
    assert code(lambda: sfn.test_state(definition=json.dumps({"Type": "Pass", "End": True}), input="[")) == (
        "InvalidExecutionInput"
    )
    assert code(lambda: sfn.test_state(definition=json.dumps({"Type": "Nope", "End": True}))) == "InvalidDefinition"


# -- UpdateStateMachine, versions and aliases ----------------------------------------------------------


def say(word: str) -> str:
    return json.dumps({"StartAt": "Say", "States": {"Say": {"Type": "Pass", "Result": word, "End": True}}})


def output_of(sfn: Any, started: dict[str, Any]) -> Any:
    for _ in range(200):
        answer = sfn.describe_execution(executionArn=started["executionArn"])
        if answer["status"] != "RUNNING":
            return json.loads(answer["output"])
        time.sleep(0.02)
    raise AssertionError("the execution did not end")


def test_update_publish_and_run_versions_and_an_alias(sfn: Any) -> None:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    arn = sfn.create_state_machine(name=name, definition=say("one"), roleArn=ROLE)["stateMachineArn"]
    first = sfn.publish_state_machine_version(stateMachineArn=arn, description="first")["stateMachineVersionArn"]
    updated = sfn.update_state_machine(stateMachineArn=arn, definition=say("two"), publish=True)
    second = updated["stateMachineVersionArn"]

    # THEN versions are numbered, newest first, and each runs the definition it froze
    assert (first, second) == (f"{arn}:1", f"{arn}:2")
    listed = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [second, first]
    assert output_of(sfn, sfn.start_execution(stateMachineArn=first)) == "one"
    assert output_of(sfn, sfn.start_execution(stateMachineArn=arn)) == "two"
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == json.loads(say("two"))
    # AND publishing again without a change returns the same version; a stale revision conflicts
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == second
    assert code(lambda: sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="old")) == "ConflictException"

    # WHEN an alias sends all traffic to version 1, then is moved to version 2
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": first, "weight": 100}]
    )["stateMachineAliasArn"]
    before = output_of(sfn, sfn.start_execution(stateMachineArn=alias))
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[
            {"stateMachineVersionArn": second, "weight": 100},
            {"stateMachineVersionArn": first, "weight": 0},
        ],
    )
    after = output_of(sfn, sfn.start_execution(stateMachineArn=alias))

    assert alias == f"{arn}:live"
    assert (before, after) == ("one", "two")
    described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert described["name"] == "live"
    assert (
        sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"][0]["stateMachineAliasArn"] == alias
    )
    # AND a version an alias uses cannot be deleted; once the alias is gone it can
    assert code(lambda: sfn.delete_state_machine_version(stateMachineVersionArn=first)) == "ConflictException"
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    sfn.delete_state_machine_version(stateMachineVersionArn=first)
    assert [
        v["stateMachineVersionArn"]
        for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    ] == [second]
    assert code(lambda: sfn.describe_state_machine_alias(stateMachineAliasArn=alias)) == "ResourceNotFound"


def test_version_and_alias_errors_have_awss_codes(sfn: Any) -> None:
    arn = new_machine(sfn)
    version = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]

    assert code(lambda: sfn.update_state_machine(stateMachineArn=arn)) == "MissingRequiredParameter"
    assert code(lambda: sfn.update_state_machine(stateMachineArn=arn, definition="{")) == "InvalidDefinition"
    assert (
        code(
            lambda: sfn.create_state_machine_alias(
                name="half", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 50}]
            )
        )
        == "ValidationException"
    )
    assert (
        code(
            lambda: sfn.create_state_machine_alias(
                name="ghost", routingConfiguration=[{"stateMachineVersionArn": f"{arn}:99", "weight": 100}]
            )
        )
        == "ResourceNotFound"
    )
    assert code(lambda: sfn.start_execution(stateMachineArn=f"{arn}:nope")) == "StateMachineDoesNotExist"
