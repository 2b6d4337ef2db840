"""The Lambda layer's distribution (layers/runtime) is the repository's package less the local runner.

Two pyproject files describe one package: these tests keep what they share equal, and check that
the layer's wheel holds every runtime module and no ``sfn_workers.local``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER_PROJECT = ROOT / "layers" / "runtime"


def _project(path: Path) -> dict[str, object]:
    with (path / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def test_the_layer_distribution_has_the_packages_name_version_and_runtime_dependencies() -> None:
    # GIVEN the repository's package and the layer's distribution of it
    main, layer = _project(ROOT), _project(LAYER_PROJECT)
    extras = main["optional-dependencies"]
    assert isinstance(extras, dict)
    # THEN they are one package to pip and to Lambda: same name, version, dependencies, tracing extra
    assert (layer["name"], layer["version"]) == (main["name"], main["version"])
    assert layer["dependencies"] == main["dependencies"]
    assert layer["optional-dependencies"] == {"tracing": extras["tracing"]}


def test_the_layer_requirements_install_the_runtime_distribution() -> None:
    lines = (ROOT / "layers" / "sfn_workers" / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == ["./layers/runtime[tracing]"]


@pytest.mark.slow
def test_the_layer_wheel_holds_every_runtime_module_and_no_local_tooling(tmp_path: Path) -> None:
    # WHEN pip builds the layer's wheel (as `sam build` does through the requirements file)
    leftovers = [LAYER_PROJECT / "build", LAYER_PROJECT / "sfn_workers.egg-info"]
    left_before = {p for p in leftovers if p.exists()}
    try:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
            cwd=LAYER_PROJECT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        for path in set(leftovers) - left_before:  # pip builds in the tree: leave it as it was
            shutil.rmtree(path, ignore_errors=True)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("sfn_workers-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # THEN every runtime module of the working tree is in it, and nothing under sfn_workers/local
    runtime = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "sfn_workers").rglob("*.py")
        if "local" not in p.relative_to(ROOT / "sfn_workers").parts
    }
    assert runtime <= names
    assert not [n for n in names if n.startswith("sfn_workers/local/")]
