"""The SAM template as the local runner reads it: intrinsics, Globals, substitutions, ARNs back to functions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sfn_workers.local.sam import (
    TemplateError,
    function_arn,
    lambda_resources,
    load_template,
    substitute,
)

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
  Days: {Type: Number, Default: 7}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    Timeout: 20
    Environment:
      Variables:
        BUCKET: !Ref Payloads
        LEVEL: INFO
Resources:
  Payloads:
    Type: AWS::S3::Bucket
  Named:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "orders-${Stage}-${AWS::AccountId}"
  Topic:
    Type: AWS::SNS::Topic
  Dlq:
    Type: AWS::SQS::Queue
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 2}
  ProdOnly:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Check:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.check
      Timeout: 5
      Environment:
        Variables:
          LEVEL: !If [IsProd, WARNING, DEBUG]
          TOPIC: !Ref Topic
          JOINED: !Join ["-", [a, !Ref Stage, !Select [1, [x, y]]]]
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-worker"
      Handler: app.work
      Events:
        Feed:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, BatchSize: 4, FunctionResponseTypes: [ReportBatchItemFailures]}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions:
        CheckArn: !GetAtt Check.Arn
        WorkerName: !Ref Worker
        TopicArn: !Ref Topic
        JobsUrl: !Ref Jobs
        Days: !Ref Days
"""

DEFINITION = """{
  "StartAt": "Check",
  "States": {
    "Check": {"Type": "Task", "Resource": "${CheckArn}", "Next": "Work"},
    "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "${WorkerName}", "Payload.$": "$"}, "Next": "Fan"},
    "Fan": {"Type": "Map", "ItemProcessor": {"StartAt": "Notify", "States": {
      "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true,
                 "Parameters": {"TopicArn": "${TopicArn}", "Message": "keep ${Unknown} and ${Days} days"}}}},
      "End": true}
  }
}"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "machine.asl.json").write_text(DEFINITION)
    return tmp_path / "template.yaml"


def test_functions_get_globals_merged_and_intrinsics_resolved(app: Path) -> None:
    template = load_template(app)

    check = template.functions["Check"]
    assert check.code_uri == (app.parent / "src").resolve()
    assert check.handler == "app.check"
    assert check.timeout == 5.0  # the function's own value wins over Globals
    assert template.functions["Worker"].timeout == 20.0  # from Globals
    assert check.environment == {
        "BUCKET": "sfn-workers-local-payloads",
        "LEVEL": "DEBUG",  # the function's variable wins; !If on a false condition
        "TOPIC": "arn:aws:sns:us-east-1:123456789012:sfn-workers-local-Topic",
        "JOINED": "a-dev-y",
    }
    assert template.functions["Worker"].name == "sfn-workers-local-worker"
    assert template.functions["Worker"].environment == {"BUCKET": "sfn-workers-local-payloads", "LEVEL": "INFO"}


def test_resources_get_local_names_and_conditions_apply(app: Path) -> None:
    template = load_template(app)

    assert template.resources["Named"].name == "orders-dev-123456789012"
    assert template.resources["Payloads"].name == "sfn-workers-local-payloads"
    assert "ProdOnly" not in template.resources
    assert load_template(app, parameters={"Stage": "prod"}).resources["ProdOnly"].type == "AWS::SNS::Topic"


def test_definition_substitutions_fill_the_definition_with_local_arns(app: Path) -> None:
    machine = load_template(app).state_machine()

    states = machine.definition["States"]
    assert states["Check"]["Resource"] == function_arn("Check")
    assert states["Work"]["Parameters"]["FunctionName"] == "sfn-workers-local-worker"
    notify = states["Fan"]["ItemProcessor"]["States"]["Notify"]["Parameters"]
    assert notify["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:sfn-workers-local-Topic"
    assert notify["Message"] == "keep ${Unknown} and 7 days"  # unknown placeholders stay as written


def test_resource_arns_map_back_to_template_functions(app: Path) -> None:
    template = load_template(app)

    assert template.function_for(function_arn("Check")).logical_id == "Check"  # type: ignore[union-attr]
    assert template.function_for(function_arn("Check") + ":$LATEST").logical_id == "Check"  # type: ignore[union-attr]
    assert template.function_for("123456789012:function:Check:live").logical_id == "Check"  # type: ignore[union-attr]
    assert template.function_for("sfn-workers-local-worker").logical_id == "Worker"  # type: ignore[union-attr]
    assert template.function_for(function_arn("Nope")) is None
    machine = template.state_machine("Machine")
    assert lambda_resources(machine.definition) == [
        ("Check", function_arn("Check")),
        ("Work", "sfn-workers-local-worker"),
    ]


def test_sqs_event_sources_are_read_with_their_batch_settings(app: Path) -> None:
    (mapping,) = load_template(app).event_sources

    assert (mapping.function, mapping.queue, mapping.batch_size) == ("Worker", "Jobs", 4)
    assert mapping.report_batch_item_failures is True


def test_substitute_replaces_in_keys_and_values_only_known_names() -> None:
    assert substitute({"${A}": ["x${A}y", 3, {"k": "${B}"}]}, {"A": "1"}) == {"1": ["x1y", 3, {"k": "${B}"}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources:\n  B:\n    Type: AWS::S3::Bucket\n", "has no state machine"),
        ("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: nodots}\n", "Handler"),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: a.b, CodeUri: nope/}\n",
            "nope/",
        ),
        ("Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {TopicName: !Ref Missing}\n", "Missing"),
        ("Resources: [1, 2\n", "not valid YAML"),
    ],
)
def test_templates_that_cannot_run_say_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))

    with pytest.raises(TemplateError) as raised:
        load_template(path).state_machine()
    assert message in str(raised.value)


def test_several_state_machines_need_a_name(app: Path) -> None:
    text = (
        app.read_text() + "  Other:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n      Definition: {}\n"
    )
    app.write_text(text)

    with pytest.raises(TemplateError, match="several state machines"):
        load_template(app).state_machine()
    assert load_template(app).state_machine("Other").logical_id == "Other"


def test_a_missing_template_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="template not found"):
        load_template(tmp_path / "nope.yaml")
