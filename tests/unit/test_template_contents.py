"""template.yaml says what the issue asks of it: runtime, architecture parameter, settings,
least-privilege policies, a locked-down payload bucket, SQS with a DLQ, state machine logging."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from check_asl import load_template  # noqa: E402

T = load_template(ROOT / "template.yaml")
R = T["Resources"]
ASL = json.loads((ROOT / "statemachine" / "order.asl.json").read_text(encoding="utf-8"))
FUNCTIONS = [name for name, r in R.items() if r["Type"] == "AWS::Serverless::Function"]
STATE_MACHINE_ARN = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-order"


def statements(function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in R[function]["Properties"].get("Policies") or []:
        found += policy.get("Statement") or []
    return found


def test_functions_run_python312_on_an_architecture_parameter_defaulting_to_arm64() -> None:
    fn = T["Globals"]["Function"]
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == [{"Ref": "Architecture"}]
    assert T["Parameters"]["Architecture"]["Default"] == "arm64"
    assert set(T["Parameters"]["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}
    assert fn["Tracing"] == "Active"
    assert fn["Layers"] == [{"Ref": "SfnWorkersLayer"}]


def test_globals_carry_the_sfn_workers_and_powertools_settings() -> None:
    env = T["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SFN_WORKERS_BUCKET"] == {"Ref": "PayloadBucket"}
    assert env["SFN_WORKERS_PREFIX"] == {"Ref": "PayloadPrefix"}
    assert {"SFN_WORKERS_THRESHOLD_BYTES", "SFN_WORKERS_TIMEOUT_MARGIN_MS"} <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] and env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_the_layer_is_built_from_this_repository_not_copied() -> None:
    layer = R["SfnWorkersLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    requirements = (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").read_text(encoding="utf-8")
    assert [line for line in requirements.splitlines() if line and not line.startswith("#")] == [
        "./layers/runtime[tracing]"
    ]
    assert not (ROOT / "handlers" / "sfn_workers").exists()


def test_every_task_function_of_the_definition_has_a_substitution_to_a_template_function() -> None:
    subs = R["OrderStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for key, value in subs.items():
        if key.endswith("FunctionArn"):
            assert value == {"Fn::GetAtt": [key.removesuffix("Arn"), "Arn"]}
            assert key.removesuffix("Arn") in FUNCTIONS
    assert subs["OrderTopicArn"] == {"Ref": "OrderTopic"} and subs["InvoiceQueueUrl"] == {"Ref": "InvoiceQueue"}


@pytest.mark.parametrize(
    ("function", "actions"),
    [
        ("GenerateInvoiceFunction", {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}),
        # hands its token off: it reports only a failure of its own (table or topic unreachable)
        ("ManualApprovalFunction", {"states:SendTaskFailure"}),
        ("ApprovalDecisionFunction", {"states:SendTaskSuccess", "states:SendTaskFailure"}),
    ],
)
def test_callback_workers_may_send_task_outcomes_to_this_state_machine_only(function: str, actions: set[str]) -> None:
    [statement] = [s for s in statements(function) if any(a.startswith("states:") for a in s["Action"])]
    assert set(statement["Action"]) == actions
    assert statement["Resource"] == {"Fn::Sub": STATE_MACHINE_ARN}
    assert R["OrderStateMachine"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-order"}


def test_the_approval_request_is_stored_and_announced_by_manual_approval_and_claimed_by_the_decision_only() -> None:
    table = {"Fn::GetAtt": ["ApprovalsTable", "Arn"]}
    grants = {
        fn: {(a, json.dumps(s["Resource"])) for s in statements(fn) for a in s["Action"] if not a.startswith("states:")}
        for fn in FUNCTIONS
    }
    assert grants["ManualApprovalFunction"] == {
        ("dynamodb:PutItem", json.dumps(table)),
        ("sns:Publish", json.dumps({"Ref": "ApprovalTopic"})),
    }
    assert grants["ApprovalDecisionFunction"] == {
        ("dynamodb:GetItem", json.dumps(table)),
        ("dynamodb:UpdateItem", json.dumps(table)),
    }
    others = {fn: g for fn, g in grants.items() if fn not in ("ManualApprovalFunction", "ApprovalDecisionFunction")}
    assert not any(
        "ApprovalsTable" in resource or "ApprovalTopic" in resource for g in others.values() for _, resource in g
    )
    # the decision is a function URL that only signed (IAM) callers reach
    assert R["ApprovalDecisionFunction"]["Properties"]["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
    # requests expire (TTL) with the step's timeout
    assert R["ApprovalsTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expiresAt",
        "Enabled": True,
    }
    timeout = R["ManualApprovalFunction"]["Properties"]["Environment"]["Variables"]["APPROVAL_TIMEOUT_SECONDS"]
    assert int(timeout) == ASL["States"]["ManualApproval"]["TimeoutSeconds"]
    assert ASL["States"]["ManualApproval"]["HeartbeatSeconds"] < ASL["States"]["ManualApproval"]["TimeoutSeconds"]


def test_s3_access_is_limited_to_the_payload_prefix_and_to_the_functions_that_need_it() -> None:
    prefix = {"Fn::Sub": "${PayloadBucket.Arn}/${PayloadPrefix}*"}
    s3 = {fn: {a for s in statements(fn) for a in s["Action"] if a.startswith("s3:")} for fn in FUNCTIONS}
    assert s3 == {
        "ValidateOrderFunction": {"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
        "ShipItemFunction": {"s3:GetObject", "s3:ListBucket"},
        "ManualApprovalFunction": set(),
        "ApprovalDecisionFunction": set(),
        "ChargeCardFunction": set(),
        "GenerateInvoiceFunction": set(),
    }
    for fn in ("ValidateOrderFunction", "ShipItemFunction"):
        objects = [s for s in statements(fn) if s["Action"] != ["s3:ListBucket"]]
        assert objects and all(s["Resource"] == prefix for s in objects)
        # listing (so a missing object reads as NoSuchKey) is limited to the payload prefix too
        [listing] = [s for s in statements(fn) if s["Action"] == ["s3:ListBucket"]]
        assert listing["Resource"] == {"Fn::GetAtt": ["PayloadBucket", "Arn"]}
        assert listing["Condition"] == {"StringLike": {"s3:prefix": {"Fn::Sub": "${PayloadPrefix}*"}}}
    assert not any(s.get("Resource") == "*" for fn in FUNCTIONS for s in statements(fn))


def test_the_payload_bucket_is_encrypted_private_tls_only_and_expires_offloaded_objects() -> None:
    bucket = R["PayloadBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == {"Ref": "PayloadPrefix"}
    assert rule["ExpirationInDays"] == {"Ref": "PayloadExpirationDays"}
    [deny] = R["PayloadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_invoice_worker_is_fed_by_sqs_with_partial_batch_failures_and_a_dlq() -> None:
    [source] = R["GenerateInvoiceFunction"]["Properties"]["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["InvoiceQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    redrive = R["InvoiceQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["InvoiceDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] >= 1
    # Lambda's advice: a visibility timeout of at least six times the function's timeout
    assert R["InvoiceQueue"]["Properties"]["VisibilityTimeout"] >= 6 * T["Globals"]["Function"]["Timeout"]


def test_the_idempotency_table_matches_powertools_defaults() -> None:
    table = R["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert R["ChargeCardFunction"]["Properties"]["Environment"]["Variables"]["IDEMPOTENCY_TABLE"] == {
        "Ref": "IdempotencyTable"
    }


def test_the_state_machine_logs_and_traces() -> None:
    sm = R["OrderStateMachine"]["Properties"]
    assert sm["DefinitionUri"] == "statemachine/order.asl.json"
    assert sm["Tracing"] == {"Enabled": True}
    [destination] = sm["Logging"]["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": ["StateMachineLogGroup", "Arn"]}


def test_the_definition_has_the_issues_shape() -> None:
    states = ASL["States"]
    assert ASL["StartAt"] == "ValidateOrder"
    assert states["ValidateOrder"]["Catch"][0] == {
        "ErrorEquals": ["ValidationError"],
        "ResultPath": "$.error",
        "Next": "RejectOrder",
    }
    assert states["RejectOrder"]["Type"] == "Fail"
    assert states["CheckInventory"]["Choices"][0]["Variable"] == "$.inStock"
    assert states["BackorderItem"]["Type"] == "Wait"
    assert states["ProcessPayment"]["Type"] == "Parallel" and states["ProcessPayment"]["ResultPath"] == "$.payment"
    send = states["ProcessPayment"]["Branches"][1]["States"]["SendConfirmation"]
    assert send["Resource"] == "arn:aws:states:::sns:publish" and send["Parameters"]["Message.$"].startswith(
        "States.Format("
    )
    assert states["FulfillOrder"]["Type"] == "Map" and states["FulfillOrder"]["ItemsPath"] == "$.items"
    assert states["ManualApproval"]["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert states["GenerateInvoice"]["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert states["OrderComplete"]["Type"] == "Succeed"
