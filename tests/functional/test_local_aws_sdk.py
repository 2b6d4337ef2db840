"""aws-sdk integrations as AWS runs them, against the embedded moto: SDK service names, member names
capitalised both ways, nulls dropped, errors named ``<Client>.<Exception>``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sfn_workers.local.asl import TaskError
from sfn_workers.local.emulator import Emulator
from sfn_workers.local.services import Services

ROLE = "arn:aws:iam::123456789012:role/sfn"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = Emulator()
    with emulator.applied():
        emulator.reset()
        yield emulator


def sdk(services: Services, api: str, parameters: dict[str, Any]) -> Any:
    return services.call(f"arn:aws:states:::aws-sdk:{api}", parameters)


def test_camel_case_apis_take_and_return_capitalised_members(emulator: Emulator, services: Services) -> None:
    sfn = emulator.client("stepfunctions")
    arn = sfn.create_state_machine(name="m", definition=PASS, roleArn=ROLE)["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, name="first")

    listed = sdk(services, "sfn:listExecutions", {"StateMachineArn": arn, "NextToken": None})

    (execution,) = listed["Executions"]
    assert execution["Name"] == "first"
    assert execution["StateMachineArn"] == arn
    assert isinstance(execution["StartDate"], str)
    assert "executions" not in listed


def test_the_sdk_name_of_a_service_is_mapped_to_botocores(services: Services) -> None:
    agents = sdk(services, "bedrockagent:listAgents", {})
    applications = sdk(services, "emrserverless:listApplications", {})

    assert agents["AgentSummaries"] == []
    assert applications["Applications"] == []


def test_null_members_are_absent_as_on_aws(emulator: Emulator, services: Services) -> None:
    emulator.client("s3").create_bucket(Bucket="sdk-bucket")
    sdk(services, "s3:putObject", {"Bucket": "sdk-bucket", "Key": "k", "Body": "x", "ContentType": None})

    listed = sdk(services, "s3:listObjectsV2", {"Bucket": "sdk-bucket", "Prefix": None, "ContinuationToken": None})

    assert [item["Key"] for item in listed["Contents"]] == ["k"]


@pytest.mark.parametrize(
    ("resource", "parameters", "error"),
    [
        (
            "aws-sdk:sfn:describeExecution",
            {"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:m:nope"},
            "Sfn.ExecutionDoesNotExistException",
        ),
        (
            "aws-sdk:dynamodb:getItem",
            {"TableName": "missing", "Key": {"id": {"S": "1"}}},
            "DynamoDb.ResourceNotFoundException",
        ),
        ("aws-sdk:dynamodb:getItem", {"TableName": "t", "Key": {}}, "DynamoDb.DynamoDbException"),
        ("dynamodb:getItem", {"TableName": "t", "Key": {}}, "DynamoDB.AmazonDynamoDBException"),
        ("aws-sdk:eventbridge:describeRule", {"Name": "nope"}, "EventBridge.ResourceNotFoundException"),
    ],
)
def test_errors_are_named_as_aws_names_them(
    emulator: Emulator, services: Services, resource: str, parameters: dict[str, Any], error: str
) -> None:
    emulator.client("dynamodb").create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(TaskError) as raised:
        services.call(f"arn:aws:states:::{resource}", parameters)

    assert raised.value.error == error
    assert raised.value.cause


def test_an_unknown_service_fails_in_one_short_line(services: Services) -> None:
    with pytest.raises(TaskError) as raised:
        sdk(services, "notaservice:doThing", {})

    assert raised.value.error == "States.Runtime"
    assert "'notaservice'" in str(raised.value.cause)
    assert len(str(raised.value.cause)) < 300
    assert "\n" not in str(raised.value.cause)


def test_an_unknown_action_names_the_service(services: Services) -> None:
    with pytest.raises(TaskError) as raised:
        sdk(services, "sfn:launchRocket", {})

    assert raised.value.error == "States.Runtime"
    assert "Sfn has no action 'launchRocket'" in str(raised.value.cause)


def test_an_integration_not_emulated_fails_in_one_line_naming_it_and_how_to_mock_it(services: Services) -> None:
    with pytest.raises(TaskError) as raised:
        services.call("arn:aws:states:::batch:submitJob.sync", {"JobName": "j"})

    cause = str(raised.value.cause)
    assert raised.value.error == "States.Runtime"
    assert "arn:aws:states:::batch:submitJob.sync" in cause
    assert "--mock-config" in cause
    assert "\n" not in cause
