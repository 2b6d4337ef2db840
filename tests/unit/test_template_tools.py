"""The external checkers of ``make validate`` fail on broken copies of the template, ASL and code.

``make validate`` runs them on the real files (which must pass); these tests prove that each one
would catch the breakage it is there for, so a checker that silently checks nothing (wrong path,
wrong framework, a flag that turns it off) fails the build. They use the venvs that the Makefile
builds (.venv-tools, .venv-checkov), cached between runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools" / "bin"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TEMPLATE = (ROOT / "template.yaml").read_text(encoding="utf-8")
ASL = json.loads((ROOT / "statemachine" / "order.asl.json").read_text(encoding="utf-8"))

sys.path.insert(0, str(ROOT / "tools"))
from check_asl import load_template  # noqa: E402

# A fresh machine first creates the tool venvs; the checkers take seconds each: not in `make check`.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def tool_venvs() -> None:
    subprocess.run(
        ["make", "-s", ".venv-tools/.installed", ".venv-checkov/.installed"], cwd=ROOT, check=True, timeout=900
    )


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def broken_template(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TEMPLATE, old
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace(old, new, 1), encoding="utf-8")
    return path


def test_cfn_lint_catches_a_reference_to_a_missing_resource(tmp_path: Path) -> None:
    path = broken_template(tmp_path, "      Bucket: !Ref PayloadBucket\n", "      Bucket: !Ref PayloadBuckett\n")
    done = run(TOOLS / "cfn-lint", path, cwd=tmp_path)
    assert done.returncode != 0
    assert "E1020 'PayloadBuckett'" in done.stdout


def test_sam_validate_lint_catches_a_misspelt_property(tmp_path: Path) -> None:
    path = broken_template(tmp_path, "      KmsMasterKeyId: alias/aws/sns", "      KmsMasterKey: alias/aws/sns")
    done = run(TOOLS / "sam", "validate", "--lint", "--region", "eu-west-1", "--template", path, cwd=tmp_path)
    assert done.returncode != 0
    assert "KmsMasterKey" in done.stdout + done.stderr


def test_sam_validate_catches_a_state_machine_without_definition(tmp_path: Path) -> None:
    # `sam validate --lint` only runs cfn-lint, which lets this through: the SAM translator's own
    # validation (plain `sam validate`) is what catches it, so `make validate` runs both.
    path = broken_template(tmp_path, "      DefinitionUri: statemachine/order.asl.json\n", "")
    done = run(TOOLS / "sam", "validate", "--region", "eu-west-1", "--template", path, cwd=tmp_path)
    assert done.returncode != 0
    assert "Either 'Definition' or 'DefinitionUri' property must be specified" in done.stdout + done.stderr


def test_statelint_catches_a_dangling_transition_and_an_unknown_jitter_strategy(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(ASL))
    broken["States"]["CheckInventory"]["Default"] = "BackorderItems"
    broken["States"]["ValidateOrder"]["Retry"][0]["JitterStrategy"] = "SOMETIMES"
    path = tmp_path / "order.asl.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    done = run(TOOLS / "statelint", path, cwd=tmp_path)
    assert done.returncode != 0
    assert 'No state found named "BackorderItems"' in done.stdout
    assert "JitterStrategy" in done.stdout


def test_checkov_catches_a_bucket_open_to_the_public(tmp_path: Path) -> None:
    path = broken_template(tmp_path, "        BlockPublicAcls: true\n", "        BlockPublicAcls: false\n")
    done = run(
        CHECKOV,
        "--file",
        path,
        "--framework",
        "cloudformation",
        "--quiet",
        "--compact",
        "--skip-download",
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "CKV_AWS_53" in done.stdout  # "Ensure S3 bucket has block public ACLS enabled"


def test_every_checkov_suppression_states_its_reason() -> None:
    template = load_template(ROOT / "template.yaml")
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []
    ]
    assert skips, "the template suppresses checks; this test would otherwise check nothing"
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip.get("comment", "").split()) >= 5, f"{name}: {skip['id']} is suppressed without a reason"


def test_bandit_catches_a_shell_command_in_a_handler(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "handlers", tmp_path / "handlers")
    (tmp_path / "handlers" / "run_report.py").write_text(
        "import subprocess\n\n\ndef handler(event, context):\n"
        "    return subprocess.check_output(event['command'], shell=True)\n",
        encoding="utf-8",
    )
    done = run(TOOLS / "bandit", "--quiet", "-c", ROOT / "tools" / "bandit.yaml", "-r", "handlers", cwd=tmp_path)
    assert done.returncode != 0
    assert "B602" in done.stdout  # subprocess call with shell=True
