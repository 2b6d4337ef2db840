"""Mocked Task responses from a mock config in AWS Step Functions Local's format
(fixtures/shop/mock-config.json): Lambda, unsupported integrations, retries, callbacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import run_execution
from sfn_workers.local.mock_config import MockConfig, MockConfigError

SHOP = Path(__file__).parent / "fixtures" / "shop"
TEMPLATE = SHOP / "template.yaml"
MOCKS = SHOP / "mock-config.json"


def run(machine: str, case: str, input: Any) -> Any:
    return run_execution(TEMPLATE, input, state_machine=machine, mock_config=MOCKS, test_case=case)


def test_mocked_lambda_and_unsupported_integration_give_their_mocked_results() -> None:
    # GIVEN a state machine whose Lambda is not in the template and whose Glue job is not emulated
    result = run("ReportMachine", "HappyPath", {"reportId": "r-1"})

    # THEN the mocked Invoke answer's Payload and the mocked job run are the states' results
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"reportId": "r-1", "render": {"pages": 3}, "crunch": {"state": "SUCCEEDED"}}


def test_each_retry_takes_the_next_invocations_response() -> None:
    busy_once = run("ReportMachine", "GlueBusyOnce", {"reportId": "r-2"})
    always_busy = run("ReportMachine", "GlueAlwaysBusy", {"reportId": "r-3"})

    # invocation 0 throws, the Retry's invocation 1 returns
    assert busy_once.status == "SUCCEEDED", busy_once.cause
    assert busy_once.output["crunch"] == {"state": "SUCCEEDED"}
    # invocations 0-2 throw: MaxAttempts 2 retries run out and the mocked error ends the execution
    assert always_busy.status == "FAILED"
    assert (always_busy.error, always_busy.cause) == ("Glue.ConcurrentRunsExceededException", "another run is going")
    failed = [e for e in always_busy.history if e["type"] == "TaskFailed"]
    assert len(failed) == 3


def test_a_mocked_failure_takes_the_catch_path_of_a_real_workflow() -> None:
    result = run("SagaMachine", "CardDeclined", {"orderId": "o-1", "amount": 5})

    # the saga compensates (Release ran against the emulator) and fails with the mocked cause
    assert result.status == "FAILED"
    assert (result.error, result.cause) == ("OrderFailed", "card refused (mocked)")
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"] == "TaskStateEntered"]
    assert entered == ["Reserve", "Charge", "Release"]


def test_a_mocked_wait_for_task_token_state_returns_what_the_callback_would_send() -> None:
    result = run("PackingMachine", "AllPacked", {"parcels": ["a", "b", "c"]})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"packed": "by hand"}] * 3


def test_a_bare_definition_uses_the_one_state_machine_with_that_test_case(tmp_path: Path) -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:pay", "End": True}
        },
    }
    mocks = {
        "StateMachines": {"Payments": {"TestCases": {"Paid": {"Charge": "PaidOk"}}}},
        "MockedResponses": {"PaidOk": {"0": {"Return": {"paid": True}}}},
    }
    path = tmp_path / "mocks.json"
    path.write_text(json.dumps(mocks))

    result = run_execution(definition, {}, mock_config=path, test_case="Paid")

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"paid": True}


def test_an_invocation_without_a_response_fails_naming_the_state_and_index() -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": "arn:aws:states:::batch:submitJob.sync",
                "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1, "MaxAttempts": 3}],
                "End": True,
            }
        },
    }
    mocks = {
        "StateMachines": {"StateMachine": {"TestCases": {"Busy": {"Charge": "BusyOnce"}}}},
        "MockedResponses": {"BusyOnce": {"0": {"Throw": {"Error": "Busy"}}}},
    }

    result = run_execution(definition, {}, mock_config=mocks, test_case="Busy")

    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "no response for invocation 1 of state 'Charge'" in str(result.cause)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"StateMachines": {}}, "needs StateMachines and MockedResponses"),
        ({"StateMachines": {"M": {}}, "MockedResponses": {}}, "StateMachines.M needs a TestCases object"),
        (
            {"StateMachines": {"M": {"TestCases": {"T": {"S": "Nope"}}}}, "MockedResponses": {}},
            "mocks state 'S' with 'Nope', which is not in MockedResponses",
        ),
        ({"StateMachines": {}, "MockedResponses": {"R": {"first": {"Return": 1}}}}, "'first' is not an index"),
        ({"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {}}}}}, "exactly one of"),
        ({"StateMachines": {}, "MockedResponses": {"R": {"0": {"Throw": {"Cause": "c"}}}}}, "needs an Error"),
        ({"StateMachines": {}, "MockedResponses": {"R": {"3-1": {"Return": 1}}}}, "ends before it starts"),
    ],
)
def test_a_config_not_in_awss_format_is_refused_with_what_is_wrong(document: dict[str, Any], message: str) -> None:
    with pytest.raises(MockConfigError, match=message):
        MockConfig.load(document)


def test_an_unknown_test_case_or_state_machine_lists_the_known_ones() -> None:
    config = MockConfig.load(MOCKS)

    with pytest.raises(MockConfigError, match=r"has no test case 'Nope' .*GlueAlwaysBusy, GlueBusyOnce, HappyPath"):
        config.test_case("ReportMachine", "Nope")
    with pytest.raises(MockConfigError, match="no state machine 'Other'"):
        config.test_case("Other", "HappyPath")
    with pytest.raises(MockConfigError, match="needs a mock config"):
        run_execution(TEMPLATE, {}, state_machine="ReportMachine", test_case="HappyPath")
