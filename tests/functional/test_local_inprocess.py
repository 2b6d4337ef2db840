"""The local runner's in-process transport: boto3 calls to the embedded emulator answered without
sockets, with the answers (and errors) that the same emulator gives over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sfn_workers.local import LocalRunner
from sfn_workers.local.emulator import Emulator, client_of


@pytest.fixture
def network_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs botocore really sent over the network (urllib3), from now on."""
    from botocore.httpsession import URLLib3Session

    sent: list[str] = []
    real = URLLib3Session.send

    def send(self: Any, request: Any) -> Any:
        sent.append(request.url)
        return real(self, request)

    monkeypatch.setattr(URLLib3Session, "send", send)
    return sent


def exercise(emulator: Emulator) -> dict[str, Any]:
    """One call of each kind the sample's handlers make, with what a user would look at."""
    s3, sqs, sns, dynamodb = (emulator.client(s) for s in ("s3", "sqs", "sns", "dynamodb"))
    s3.create_bucket(Bucket="inproc-bucket")
    blob = bytes(range(256)) * 4
    s3.put_object(Bucket="inproc-bucket", Key="dir/a b+c.bin", Body=blob, Metadata={"my_key": "v1", "other-key": "v2"})
    got = s3.get_object(Bucket="inproc-bucket", Key="dir/a b+c.bin")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="inproc-bucket", Key="nope")
    dynamodb.create_table(
        TableName="inproc-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="inproc-table", Item={"id": {"S": "k"}, "n": {"N": "1"}})
    with pytest.raises(ClientError) as conflict:
        dynamodb.put_item(
            TableName="inproc-table", Item={"id": {"S": "k"}}, ConditionExpression="attribute_not_exists(id)"
        )
    queue = sqs.create_queue(QueueName="inproc-queue")["QueueUrl"]
    topic = sns.create_topic(Name="inproc-topic")["TopicArn"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message=json.dumps({"orderId": "o-1"}))
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    sfn = client_of("stepfunctions", emulator.sfn_url)
    with pytest.raises(ClientError) as bad_token:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    return {
        "body": got["Body"].read() == blob,
        "metadata": got["Metadata"],
        "missing": missing.value.response["Error"]["Code"],
        "item": dynamodb.get_item(TableName="inproc-table", Key={"id": {"S": "k"}})["Item"],
        "conflict": conflict.value.response["Error"]["Code"],
        "message": json.loads(message["Body"]),
        "bad_token": bad_token.value.response["Error"]["Code"],
    }


EXPECTED = {
    "body": True,
    "metadata": {"my_key": "v1", "other-key": "v2"},
    "missing": "NoSuchKey",
    "item": {"id": {"S": "k"}, "n": {"N": "1"}},
    "conflict": "ConditionalCheckFailedException",
    "message": {"orderId": "o-1"},
    "bad_token": "InvalidToken",
}


@pytest.fixture
def in_process() -> Iterator[Emulator]:
    emulator = Emulator(transport="in-process")
    with emulator.applied():
        emulator.reset()
        yield emulator


def test_in_process_calls_get_the_emulators_answers_without_touching_the_network(
    in_process: Emulator, network_sends: list[str]
) -> None:
    # GIVEN the in-process transport (a runner's default)
    # WHEN boto3 calls S3, DynamoDB, SNS, SQS and the SendTask* endpoint, errors included
    answers = exercise(in_process)

    # THEN the answers are the emulator's, and nothing went over a socket
    assert answers == EXPECTED
    assert network_sends == []


def test_over_http_the_same_calls_give_the_same_answers(network_sends: list[str]) -> None:
    # GIVEN the HTTP transport
    emulator = Emulator(transport="http")
    with emulator.applied():
        emulator.reset()
        # WHEN the same calls are made
        answers = exercise(emulator)

    # THEN they went over HTTP to the embedded servers and were answered the same way
    assert answers == EXPECTED
    assert {url.split("/")[2] for url in network_sends} == {
        emulator.url.split("/")[2],
        emulator.sfn_url.split("/")[2],
    }


def test_both_transports_reach_one_emulator(network_sends: list[str]) -> None:
    # GIVEN an object written while a runner answers in-process
    with LocalRunner({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}) as runner:
        runner.emulator.client("s3").create_bucket(Bucket="shared-bucket")
        runner.emulator.client("s3").put_object(Bucket="shared-bucket", Key="k", Body=b"written in-process")
        assert network_sends == []

    # WHEN the runner is closed and a client reads it back (now over HTTP, as another process would)
    body = Emulator(transport="http").client("s3").get_object(Bucket="shared-bucket", Key="k")["Body"].read()

    # THEN it is there: the transports are two ways into the same emulator
    assert body == b"written in-process"
    assert network_sends


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be one of in-process, http"):
        LocalRunner({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}, transport="sockets")
