"""The shop app's workflows through ``sfn-workers serve``, driven by boto3 as against AWS: a mock
config's test cases (``stateMachineArn#TestCase``), nested orchestration, an EventBridge fan-out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sfn_workers.local.identity import ACCOUNT_ID, REGION
from tests.serve_support import served, sfn_client, until_closed

SHOP = Path(__file__).parent / "fixtures" / "shop"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with served(SHOP / "template.yaml", virtual_time=True, mock_config=SHOP / "mock-config.json") as srv:
        yield srv


@pytest.fixture(scope="module")
def sfn(server: Any) -> Any:
    return sfn_client(server.url, retries={"max_attempts": 1})


def machine(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"


def test_start_execution_of_arn_hash_test_case_runs_that_test_case(sfn: Any) -> None:
    started = sfn.start_execution(
        stateMachineArn=machine("ReportMachine") + "#GlueBusyOnce", input=json.dumps({"reportId": "r-9"})
    )

    answer = until_closed(sfn, started["executionArn"])

    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    assert json.loads(answer["output"]) == {"reportId": "r-9", "render": {"pages": 3}, "crunch": {"state": "SUCCEEDED"}}
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failed == ["Glue.ConcurrentRunsExceededException"]


def test_an_unknown_test_case_is_refused_with_the_known_ones(sfn: Any) -> None:
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine("ReportMachine") + "#Nope", input="{}")

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "GlueAlwaysBusy, GlueBusyOnce, HappyPath" in raised.value.response["Error"]["Message"]


def test_without_a_test_case_the_same_machine_runs_unmocked_states_for_real(sfn: Any) -> None:
    started = sfn.start_execution(
        stateMachineArn=machine("SagaMachine"), input=json.dumps({"orderId": "s-1", "amount": 5})
    )

    answer = until_closed(sfn, started["executionArn"])

    assert answer["status"] == "SUCCEEDED", answer.get("cause")


def test_nested_orchestration_through_the_api(sfn: Any) -> None:
    name = f"parent-{uuid.uuid4().hex[:8]}"
    started = sfn.start_execution(
        stateMachineArn=machine("ParentMachine"), name=name, input=json.dumps({"name": "lin"})
    )

    answer = until_closed(sfn, started["executionArn"])

    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    output = json.loads(answer["output"])
    assert output["syncJson"]["greeting"] == "hello lin"
    assert output["syncJson"]["startedBy"] == started["executionArn"]
    assert output["callback"] == {"doubled": 42}  # the child's function answered through AWS_ENDPOINT_URL_SFN
    # AND each child is an execution of the server: listed, described, its input linking the parent
    children = sfn.list_executions(stateMachineArn=machine("GreetChildMachine"))["executions"]
    sync_child = next(c for c in children if c["name"] == "sync-child")
    described = sfn.describe_execution(executionArn=sync_child["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["input"])["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == started["executionArn"]
    failed = sfn.list_executions(stateMachineArn=machine("FailingChildMachine"), statusFilter="FAILED")["executions"]
    assert len(failed) >= 1
