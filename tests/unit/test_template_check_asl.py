"""tools/check_asl.py: passes on the sample, and fails on each kind of breakage it guards."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import check_asl  # noqa: E402

ASL = json.loads((ROOT / "statemachine" / "order.asl.json").read_text(encoding="utf-8"))


def problems_of(mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    definition = copy.deepcopy(ASL)
    mutate(definition)
    return check_asl.check_definition(definition)


def test_the_sample_template_and_definition_pass() -> None:
    assert check_asl.check_template(ROOT / "template.yaml") == []


def test_the_command_exits_1_and_names_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    (tmp_path / "statemachine").mkdir()
    broken = copy.deepcopy(ASL)
    broken["States"]["FulfillOrder"]["MaxConcurrency"] = 0
    (tmp_path / "statemachine" / "order.asl.json").write_text(json.dumps(broken), encoding="utf-8")
    assert check_asl.main(["--template", str(tmp_path / "template.yaml")]) == 1
    assert "FulfillOrder: MaxConcurrency" in capsys.readouterr().err
    assert check_asl.main(["--template", str(ROOT / "template.yaml")]) == 0


def test_a_placeholder_without_substitution_and_an_unused_substitution_are_reported() -> None:
    text = (ROOT / "statemachine" / "order.asl.json").read_text(encoding="utf-8")
    subs = {name: "x" for name in check_asl.PLACEHOLDER.findall(text)}
    assert check_asl.check_substitutions(text, subs) == []
    missing = dict(subs)
    del missing["ShipItemFunctionArn"]
    assert check_asl.check_substitutions(text, missing) == [
        "${ShipItemFunctionArn} has no DefinitionSubstitutions entry"
    ]
    extra = dict(subs, LegacyFunctionArn="x")
    assert check_asl.check_substitutions(text, extra) == [
        "DefinitionSubstitutions entry LegacyFunctionArn is never used"
    ]


@pytest.mark.parametrize("value", [0, None, -1, 5000, "10", True])
def test_a_map_without_a_finite_max_concurrency_is_reported(value: Any) -> None:
    def mutate(d: dict[str, Any]) -> None:
        if value is None:
            del d["States"]["FulfillOrder"]["MaxConcurrency"]
        else:
            d["States"]["FulfillOrder"]["MaxConcurrency"] = value

    assert any("FulfillOrder: MaxConcurrency" in p for p in problems_of(mutate))


def test_max_concurrency_path_is_reported() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["States"]["FulfillOrder"]["MaxConcurrencyPath"] = "$.concurrency"

    assert any("MaxConcurrencyPath" in p for p in problems_of(mutate))


def test_heartbeat_not_below_timeout_is_reported() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["States"]["ManualApproval"]["HeartbeatSeconds"] = d["States"]["ManualApproval"]["TimeoutSeconds"]

    assert problems_of(mutate) == [
        "ManualApproval: HeartbeatSeconds (259200) must be less than TimeoutSeconds (259200)"
    ]


@pytest.mark.parametrize("field", ["HeartbeatSeconds", "TimeoutSeconds"])
def test_a_wait_for_task_token_task_without_heartbeat_or_timeout_is_reported(field: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        del d["States"]["GenerateInvoice"][field]

    assert any(f"GenerateInvoice: a waitForTaskToken task needs {field}" in p for p in problems_of(mutate))


@pytest.mark.parametrize("error", ["ValidationError", "States.ALL", "States.TaskFailed"])
def test_retrying_validation_errors_is_reported(error: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["States"]["ValidateOrder"]["Retry"][0]["ErrorEquals"].append(error)

    assert any(f"ValidateOrder.Retry[0]: retries {error}" in p for p in problems_of(mutate))


def test_a_retrier_without_full_jitter_or_max_delay_is_reported_also_inside_branches() -> None:
    def mutate(d: dict[str, Any]) -> None:
        charge = d["States"]["ProcessPayment"]["Branches"][0]["States"]["ChargeCard"]
        del charge["Retry"][1]["JitterStrategy"]
        del charge["Retry"][1]["MaxDelaySeconds"]

    found = problems_of(mutate)
    assert any("ChargeCard.Retry[1]: JitterStrategy must be FULL" in p for p in found)
    assert any("ChargeCard.Retry[1]: MaxDelaySeconds" in p for p in found)
    assert all(p.startswith("ProcessPayment.Branches[0].ChargeCard") for p in found)


def test_a_parallel_state_without_result_path_is_reported() -> None:
    def mutate(d: dict[str, Any]) -> None:
        del d["States"]["ProcessPayment"]["ResultPath"]

    assert any("ProcessPayment: a Parallel state's output is an array" in p for p in problems_of(mutate))


def test_a_task_payload_without_sfn_context_is_reported_also_inside_the_map() -> None:
    def mutate(d: dict[str, Any]) -> None:
        ship = d["States"]["FulfillOrder"]["ItemProcessor"]["States"]["ShipItem"]
        del ship["Parameters"]["Payload"]["sfn_context"]

    assert problems_of(mutate) == [
        'FulfillOrder.ItemProcessor.ShipItem: the task payload needs sfn_context: {"execution.$": '
        '"$$.Execution.Name", "state.$": "$$.State.Name"} for correlation'
    ]


def test_an_unbounded_backorder_loop_is_reported() -> None:
    # GIVEN the loop's exit rule (attempts >= 3 -> OutOfStock) removed
    def mutate(d: dict[str, Any]) -> None:
        d["States"]["CheckInventory"]["Choices"] = d["States"]["CheckInventory"]["Choices"][:1]

    [problem] = problems_of(mutate)
    assert problem.startswith("loop through BackorderItem, CheckInventory, CountBackorder, RecheckInventory")


def test_a_numeric_rule_that_stays_inside_the_loop_does_not_bound_it() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["States"]["CheckInventory"]["Choices"][1]["Next"] = "BackorderItem"

    assert any(p.startswith("loop through") for p in problems_of(mutate))


def test_a_self_loop_is_found() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}
    assert check_asl.check_definition(definition) == [
        "loop through A has no Choice with a numeric rule that leaves it "
        "(count the iterations, e.g. with States.MathAdd, and stop after N)"
    ]


def test_a_dangling_reference_inside_a_serverless_function_is_reported() -> None:
    # cfn-lint lets this one through (a Ref inside AWS::Serverless::Function properties)
    template = check_asl.load_template(ROOT / "template.yaml")
    assert check_asl.check_references(template) == []
    env = template["Resources"]["ChargeCardFunction"]["Properties"]["Environment"]["Variables"]
    env["IDEMPOTENCY_TABLE"] = {"Ref": "IdempotencyTabel"}
    env["OTHER"] = {"Fn::GetAtt": ["Missing", "Arn"]}
    env["ARN"] = {"Fn::Sub": "${Nowhere.Arn}/${AWS::Region}/${Local}"}
    env["LOCAL"] = {"Fn::Sub": ["${Local}", {"Local": "x"}]}
    assert check_asl.check_references(template) == [
        "IdempotencyTabel is referenced but is no parameter or resource",
        "Local is referenced but is no parameter or resource",
        "Missing is referenced but is no parameter or resource",
        "Nowhere is referenced but is no parameter or resource",
    ]
