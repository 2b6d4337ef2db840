"""tools/check_architecture.py: the gate finds what it guards (and the repository passes it)."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import check_architecture as gate


def _graph(*edges: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in edges:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="import x")
    return graph


def test_a_cycle_through_a_deferred_import_is_reported_with_its_loop() -> None:
    # GIVEN task -> callbacks at module level and callbacks -> task inside a function (grimp sees both)
    graph = _graph(("pkg.task", "pkg.callbacks"), ("pkg.callbacks", "pkg.task"), ("pkg.task", "pkg.errors"))
    # WHEN the cycles are listed
    found = list(gate.cycles(graph, graph.modules))
    # THEN the two modules form one cycle, shown as a loop; the acyclic module is not in it
    assert found == [["pkg.callbacks", "pkg.task"]]
    assert gate.cycle_path(graph, found[0]) == "pkg.callbacks -> pkg.task -> pkg.callbacks"


def test_an_acyclic_graph_has_no_cycles() -> None:
    graph = _graph(("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.a", "pkg.c"))
    assert list(gate.cycles(graph, graph.modules)) == []


def test_a_runtime_import_of_local_tooling_is_reported_with_its_line() -> None:
    graph = _graph(("sfn_workers._log", "sfn_workers.local.runner"), ("sfn_workers.task", "sfn_workers.errors"))
    found = list(gate.forbidden(graph, ["sfn_workers._log", "sfn_workers.task"], ["sfn_workers.local", "moto"]))
    assert found == ["sfn_workers._log imports sfn_workers.local.runner (line 1)"]


def test_a_module_over_the_line_limit_is_named(tmp_path: Path) -> None:
    (tmp_path / "small.py").write_text("x = 1\n" * 10)
    (tmp_path / "big.py").write_text("x = 1\n" * 11)
    gate_root, gate.ROOT = gate.ROOT, tmp_path
    try:
        assert list(gate.long_modules(tmp_path, limit=10)) == ["big.py: 11 lines (at most 10)"]
    finally:
        gate.ROOT = gate_root
