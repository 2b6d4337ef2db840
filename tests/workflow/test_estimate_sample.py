"""`sfn-workers estimate` on the sample's happy path: the counts are the history's, by hand."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sfn_workers.local import run_execution
from sfn_workers.local.estimate import Usage, estimate, measure

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
HAPPY = json.loads((ROOT / "events" / "execution-happy.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.skipif(not TEMPLATE.is_file(), reason="the sample template is not there")


@pytest.fixture(scope="module")
def usage() -> Usage:
    return measure(TEMPLATE, HAPPY, runs=1)


def test_transitions_and_invocations_match_a_count_of_the_history(usage: Usage) -> None:
    # GIVEN the same execution run on its own, its history counted by hand
    history = run_execution(TEMPLATE, HAPPY).history
    types = Counter(e["type"] for e in history)
    entered = sum(n for kind, n in types.items() if kind.endswith("StateEntered"))
    assert types["TaskScheduled"] == types["TaskStateEntered"]  # the happy path retries nothing
    # THEN the estimate counts one transition per state entered
    assert usage.transitions == entered
    # AND one Lambda invocation per function call the workflow makes: one ShipItem per item
    assert usage.lambda_invocations == {
        "ValidateOrderFunction": 1,
        "ChargeCardFunction": 1,
        "ShipItemFunction": len(HAPPY["items"]),
        "GenerateInvoiceFunction": 1,
    }
    assert all(mb == 512 for mb in usage.lambda_memory_mb.values())  # the template's MemorySize


def test_the_aws_requests_are_the_ones_the_handlers_and_integrations_make(usage: Usage) -> None:
    # ChargeCard's idempotency record, SendConfirmation's SNS publish, the invoice's SQS message and
    # GenerateInvoice's SendTaskSuccess (its token came through SQS)
    assert usage.requests["dynamodb:PutItem"] == 1
    assert usage.requests["sns:Publish"] == 1
    assert usage.requests["sqs:SendMessage"] == 1
    assert usage.requests["states:SendTaskSuccess"] == 1
    assert usage.uses_callbacks


def test_the_standard_cost_is_transitions_times_the_price_and_express_is_flagged(usage: Usage) -> None:
    result = estimate(usage, rate=100)
    assert result.standard_per_million["stepfunctions transitions"] == pytest.approx(usage.transitions * 25.0)
    assert any("waitForTaskToken" in w for w in result.warnings)  # the invoice step needs Standard
    assert result.first_binding is not None and result.first_binding.name == "Standard StartExecution"


def test_the_command_prints_costs_and_the_first_binding_quota(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sfn_workers.local.cli", "estimate", "--template", str(TEMPLATE),
         "--input", str(ROOT / "events" / "execution-happy.json"), "--rate", "1000", "--runs", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rate"] == 1000 and report["first_binding"]["name"] == "Standard StartExecution"
    assert report["per_million"]["STANDARD"] > report["per_million"]["EXPRESS"] > 0
    assert "waitForTaskToken" in " ".join(report["warnings"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--rate", "0"], "--rate must be a positive number"),
        (["--rate", "nan"], "--rate must be a positive number"),
        (["--rate", "10", "--runs", "0"], "--runs must be at least 1"),
        (["--rate", "10", "--facts", "missing.json"], "--facts:"),
        (["--rate", "10", "--input", "{not json"], "--input is neither"),
        (["--rate", "10", "--template", "nope.yaml"], "template not found"),
    ],
)
def test_bad_usage_is_one_clear_line_and_exit_status_2(arguments: list[str], message: str) -> None:
    from sfn_workers.local.cli import main

    args = ["estimate", "--template", str(TEMPLATE), "--input", "{}", *arguments]
    out, err = io.StringIO(), io.StringIO()
    assert main(args, out=out, err=err) == 2
    assert message in err.getvalue() and out.getvalue() == ""
