"""The repository's own architecture gate (part of `make check` and `make test`).

Checks what review alone does not keep true for long:

* no module in ``sfn_workers/`` over 500 lines (a module that grows past it is doing two jobs);
* no import cycle between modules, counting imports inside functions ("deferred" imports hide a
  cycle from the interpreter, not from the reader); imports under ``if TYPE_CHECKING:`` are not
  counted: they never run, and an annotation naming its caller's type is not a dependency;
* the runtime (what a Lambda imports: ``sfn_workers`` less ``sfn_workers.local``) never imports
  ``sfn_workers.local``, moto, jsonata or yaml, directly or through another module;
* ``sfn_workers.local.asl``'s evaluation modules never import the modules that run states.

The import graph is grimp's (the engine under import-linter), which reads every ``import``
statement of the package, at module level or not. Exit status 1 lists every violation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp
from graphs import strongly_connected  # tools/ is on sys.path when a tool runs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sfn_workers"
MAX_LINES = 500
LOCAL = f"{PACKAGE}.local"
#: Development-only third-party packages the runtime must never reach.
LOCAL_ONLY_EXTERNALS = ("moto", "jsonata", "yaml", "werkzeug", "flask")
#: The ASL interpreter's evaluation layer: pure functions over JSON values, importing nothing that runs.
ASL = f"{LOCAL}.asl"
EVALUATION = tuple(
    f"{ASL}.{name}" for name in ("paths", "intrinsics", "choice", "templates", "errors", "jsonata_bounded")
)


def long_modules(package_dir: Path, limit: int = MAX_LINES) -> Iterator[str]:
    for path in sorted(package_dir.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            yield f"{path.relative_to(ROOT)}: {lines} lines (at most {limit})"


def cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> Iterator[list[str]]:
    """Import cycles: strongly connected components of more than one module."""
    for component in strongly_connected(sorted(modules), lambda m: sorted(graph.find_modules_directly_imported_by(m))):
        if len(component) > 1:
            yield component


def cycle_path(graph: grimp.ImportGraph, component: list[str]) -> str:
    """One concrete loop through a component, for a readable message."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    node = start
    while True:
        nxt = sorted(m for m in graph.find_modules_directly_imported_by(node) if m in members)
        if start in nxt and len(path) > 1:
            return " -> ".join([*path, start])
        step = next((m for m in nxt if m not in seen), None)
        if step is None:
            return " <-> ".join(component)
        path.append(step)
        seen.add(step)
        node = step


def forbidden(graph: grimp.ImportGraph, sources: Iterable[str], targets: Iterable[str]) -> Iterator[str]:
    """Direct imports from ``sources`` into ``targets`` (or their submodules): each is one violation."""
    prefixes = tuple(targets)
    for source in sorted(sources):
        for imported in sorted(graph.find_modules_directly_imported_by(source)):
            if imported.startswith(prefixes) and any(imported == t or imported.startswith(t + ".") for t in prefixes):
                lines = graph.get_import_details(importer=source, imported=imported)
                where = f" (line {lines[0]['line_number']})" if lines else ""
                yield f"{source} imports {imported}{where}"


def violations() -> list[str]:
    graph = grimp.build_graph(
        PACKAGE, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )
    internal = {m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + ".")}
    runtime = {m for m in internal if not (m == LOCAL or m.startswith(LOCAL + "."))}
    found = list(long_modules(ROOT / PACKAGE))
    found += [f"import cycle: {cycle_path(graph, c)}" for c in cycles(graph, internal)]
    local = sorted(m for m in internal if m == LOCAL or m.startswith(LOCAL + "."))
    found += [
        f"the runtime imports local tooling: {c}"
        for c in forbidden(graph, runtime, [*local[:1], *LOCAL_ONLY_EXTERNALS])
    ]
    runners = sorted(m for m in internal if m.startswith(ASL + ".") and m not in EVALUATION and m != ASL)
    sources = [m for m in EVALUATION if m in internal]
    found += [f"an evaluation module imports a running one: {c}" for c in forbidden(graph, sources, runners)]
    return found


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    found = violations()
    for line in found:
        print(f"check_architecture: {line}")
    if not found:
        print("check_architecture: ok (module sizes, import cycles, runtime/local boundary, ASL layers)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
