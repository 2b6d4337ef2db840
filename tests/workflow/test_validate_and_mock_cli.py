"""``sfn-workers validate`` (diagnostics, exit 1 on errors) and ``sfn-workers run --mock-config --test-case``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sfn_workers.local.cli import main

SHOP = Path(__file__).parent / "fixtures" / "shop"
REPO_TEMPLATE = Path(__file__).parents[2] / "template.yaml"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_validate_passes_the_sample_template() -> None:
    status, out, _err = run_cli("validate", "--template", str(REPO_TEMPLATE))

    assert status == 0
    assert out.strip().endswith(": OK")


def test_validate_reports_warnings_but_exits_0() -> None:
    status, out, _err = run_cli("validate", "--template", str(SHOP / "template.yaml"))

    assert status == 0
    assert "ReportMachine: WARNING UNKNOWN_FUNCTION at /States/Render/Resource" in out


def test_validate_a_broken_definition_exits_1_with_code_location_and_message(tmp_path: Path) -> None:
    definition = tmp_path / "machine.asl.json"
    definition.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}))

    status, _out, err = run_cli("validate", str(definition))
    json_status, json_out, _ = run_cli("validate", str(definition), "--json")

    assert status == 1
    assert err == (
        f"{definition}: ERROR MISSING_TRANSITION_TARGET at /States/A/Next: "
        "state 'A': field 'Next' names unknown state 'Gone'\n"
    )
    assert json_status == 1
    answer = json.loads(json_out)
    assert answer["result"] == "FAIL"
    assert answer["diagnostics"] == [
        {
            "severity": "ERROR",
            "code": "MISSING_TRANSITION_TARGET",
            "message": "state 'A': field 'Next' names unknown state 'Gone'",
            "location": "/States/A/Next",
        }
    ]


def test_validate_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run_cli("validate", str(tmp_path / "nope.json"))
    both = run_cli("validate", "--template", str(REPO_TEMPLATE), str(REPO_TEMPLATE))

    assert missing[0] == 2 and "definition not found" in missing[2]
    assert both[0] == 2 and "not both" in both[2]


def test_run_a_test_case_of_a_mock_config() -> None:
    status, out, err = run_cli(
        "run",
        "--template",
        str(SHOP / "template.yaml"),
        "--state-machine",
        "ReportMachine",
        "--input",
        '{"reportId": "r-5"}',
        "--mock-config",
        str(SHOP / "mock-config.json"),
        "--test-case",
        "GlueAlwaysBusy",
        "--quiet",
    )

    assert status == 1
    assert "error: Glue.ConcurrentRunsExceededException" in err
    assert out == ""


def test_run_mock_config_usage_errors_exit_2() -> None:
    alone = run_cli("run", "-t", str(SHOP / "template.yaml"), "-s", "ReportMachine", "-i", "{}", "--test-case", "X")
    unknown = run_cli(
        "run", "-t", str(SHOP / "template.yaml"), "-s", "ReportMachine", "-i", "{}",
        "--mock-config", str(SHOP / "mock-config.json"), "--test-case", "Nope",
    )  # fmt: skip

    assert alone[0] == 2 and "go together" in alone[2]
    assert unknown[0] == 2 and "has no test case 'Nope'" in unknown[2]
