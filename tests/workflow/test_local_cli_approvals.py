"""``sfn-workers run --approve/--reject/--answers``: a person's decision for the sample's ManualApproval."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sfn_workers.local.approvals import Answer, answers_from_options
from sfn_workers.local.cli import main
from tests.workflow.test_order_workflow import TEMPLATE, order

pytestmark = pytest.mark.skipif(not TEMPLATE.is_file(), reason="the sample template is not there")

EXPENSIVE = json.dumps(order("o-cli", price=60_000))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_approve_names_the_state_and_the_reviewer() -> None:
    status, out, err = run_cli(
        "run", "--template", str(TEMPLATE), "--input", EXPENSIVE, "--approve", "ManualApproval:ann"
    )

    assert status == 0, err
    assert json.loads(out)["approval"]["reviewer"] == "ann"
    assert "decision for ManualApproval: 200" in err


def test_reject_fails_the_order_as_order_rejected() -> None:
    status, _, err = run_cli("run", "--template", str(TEMPLATE), "--input", EXPENSIVE, "--reject", "ManualApproval")

    assert status == 1
    assert "error: OrderRejected" in err
    assert "decision for ManualApproval: 200" in err and "rejected" in err


def test_an_answers_file_and_no_answer(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ManualApproval": {"approved": True, "reviewer": "dan"}}), encoding="utf-8")

    status, out, _ = run_cli("run", "--template", str(TEMPLATE), "--input", EXPENSIVE, "--answers", str(answers))
    assert status == 0 and json.loads(out)["approval"]["reviewer"] == "dan"

    status, _, err = run_cli("run", "--template", str(TEMPLATE), "--input", EXPENSIVE)
    assert status == 1 and "error: ApprovalTimedOut" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--approve", "ManualApproval", "--reject", "ManualApproval"], "answered twice"),
        (["--approve", ":ann"], "name the state"),
        (["--answers", "no-such-answers.json"], "no-such-answers.json"),
    ],
)
def test_bad_decisions_are_bad_usage(argv: list[str], message: str) -> None:
    status, _, err = run_cli("run", "--template", str(TEMPLATE), "--input", EXPENSIVE, *argv)
    assert status == 2
    assert message in err


def test_options_become_answers() -> None:
    assert answers_from_options(["A:ann"], ["B"], None) == {
        "A": Answer(approved=True, reviewer="ann"),
        "B": Answer(approved=False),
    }
