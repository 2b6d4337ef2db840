"""Pictures of a state machine with the path an execution took (``sfn-workers run --graph FILE``).

* ``.md``: Mermaid flowchart in Markdown (GitHub and most editors draw it);
* ``.svg``: a self-contained SVG, laid out by Graphviz's dot when installed, else here (graph_svg.py);
* ``.html``: the SVG with a legend and the execution's summary, in one self-contained file.

States the execution entered are green (``xN`` when entered more than once), states it never
reached are grey, the state it failed in is red, retries are marked ``↻N``, and the transitions
taken are drawn bold. Parallel branches and Map processors are drawn as boxes inside their state.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sfn_workers.local.graph_model import Trace, children, label, status, summary, targets, trace
from sfn_workers.local.graph_svg import ENGINES, svg

__all__ = ["Trace", "html_page", "markdown", "mermaid", "svg", "title_of", "trace", "write_graph"]


# -- Mermaid ---------------------------------------------------------------------------------------


def _shape(identifier: str, text: str, state: Mapping[str, Any]) -> str:
    """A Mermaid node: a rhombus for a Choice, a stadium for Succeed/Fail, else a box."""
    text = text.replace('"', "#quot;")
    if state.get("Type") == "Choice":
        return f'{identifier}{{"{text}"}}'
    if state.get("Type") in ("Succeed", "Fail"):
        return f'{identifier}(["{text}"])'
    return f'{identifier}["{text}"]'


def mermaid(definition: Mapping[str, Any], run: Trace | None = None) -> str:
    """A Mermaid flowchart of the definition, with the path of ``run`` marked."""
    lines = ["flowchart TD"]
    ids: dict[str, str] = {}
    edges: list[tuple[str, str, str, bool]] = []
    counter = iter(range(1_000_000))

    def node_id(name: str) -> str:
        if name not in ids:
            ids[name] = f"s{next(counter)}"
        return ids[name]

    def emit(machine: Mapping[str, Any], indent: str, start_id: str) -> None:
        states = machine.get("States") or {}
        start = machine.get("StartAt")
        lines.append(f"{indent}{start_id}(( ))")
        if isinstance(start, str):
            edges.append((start_id, node_id(start), "", run is not None and run.entered.get(start, 0) > 0))
        for name, state in states.items():
            if not isinstance(state, Mapping):
                continue
            inner = children(state)
            if inner:
                lines.append(f'{indent}subgraph {node_id(name)}["{label(name, state, run)}"]')
                for index, child in enumerate(inner):
                    lines.append(f'{indent}  subgraph {node_id(name)}_b{index}[" "]')
                    emit(child, indent + "    ", f"{node_id(name)}_start{index}")
                    lines.append(f"{indent}  end")
                lines.append(f"{indent}end")
            else:
                lines.append(f"{indent}{_shape(node_id(name), label(name, state, run), state)}")
            for target, text in targets(state):
                taken = run is not None and run.transitions.get((name, target), 0) > 0
                edges.append((node_id(name), node_id(target), text, taken))

    emit(definition, "  ", "start")
    for index, (source, target, words, taken) in enumerate(edges):
        arrow = "==>" if taken else "-->"
        text = f'|"{words.replace(chr(34), "#quot;")}"|' if words else ""
        lines.append(f"  {source} {arrow}{text} {target}")
        if run is not None and not taken:
            lines.append(f"  linkStyle {index} stroke:#bbb,stroke-dasharray:4 3")
    lines.append("  classDef visited fill:#d9f5d9,stroke:#2e7d32,color:#1b3d1d")
    lines.append("  classDef failed fill:#fbd5d5,stroke:#c62828,stroke-width:3px,color:#5c0f0f")
    lines.append("  classDef unvisited fill:#f3f3f3,stroke:#bbb,color:#888")
    for name, identifier in ids.items():
        kind = status(name, run)
        if kind != "plain":
            lines.append(f"  class {identifier} {kind}")
    return "\n".join(lines) + "\n"


def markdown(definition: Mapping[str, Any], run: Trace | None = None, title: str = "State machine") -> str:
    return f"# {title}\n\n{summary(run)}\n\n```mermaid\n{mermaid(definition, run)}```\n\n{_LEGEND_MD}\n"


_LEGEND_MD = (
    "Legend: green = entered (xN: entered N times), grey = not reached, red = where the execution failed "
    "(✗ error; 'saw X' = an error that was retried or caught), ↻N = retried N times, bold arrows = transitions taken."
)


# -- files -----------------------------------------------------------------------------------------


def title_of(result: Any = None, machine: str | None = None) -> str:
    """``machine — execution NAME``: what the picture shows, for its heading."""
    name = getattr(result, "name", None)
    if machine is None:
        arn = str(getattr(result, "execution_arn", "") or "")
        machine = arn.split(":")[-2] if arn.count(":") >= 7 else None
    parts = [machine or "State machine"] + ([f"execution {name}"] if name else [])
    return " — ".join(parts)


def html_page(
    definition: Mapping[str, Any], run: Trace | None = None, title: str = "State machine", engine: str = "auto"
) -> str:
    """A self-contained HTML page: title, summary, legend, the SVG, and the Mermaid source."""
    text = html.escape(summary(run).replace("**", "").replace("`", ""))
    cause = f"<pre>{html.escape(run.cause)}</pre>" if run is not None and run.cause else ""
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:'DejaVu Sans',Verdana,Helvetica,Arial,sans-serif;margin:24px;color:#222}"
        "h1{font-size:20px}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;max-height:240px;overflow:auto}"
        ".legend span{display:inline-block;padding:2px 8px;margin-right:8px;border-radius:4px}</style>"
        "</head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{text}</p>{cause}\n"
        "<p class='legend'><span style='background:#d9f5d9'>entered (xN)</span>"
        "<span style='background:#fbd5d5'>failed here (✗ error)</span>"
        "<span style='background:#f3f3f3'>not reached</span>"
        "<span>↻N retries</span><span>bold arrow: transition taken</span></p>\n"
        f"{svg(definition, run, engine=engine)}\n"
        f"<details><summary>Mermaid source</summary><pre>{html.escape(mermaid(definition, run))}</pre></details>\n"
        "</body></html>\n"
    )


def write_graph(
    path: str | Path,
    definition: Mapping[str, Any],
    result: Any = None,
    *,
    machine: str | None = None,
    engine: str = "auto",
) -> list[Path]:
    """Write the picture named by ``path`` and its companion; returns the files written.

    ``X.md`` (Mermaid in Markdown) comes with ``X.html`` (self-contained, SVG inside); ``X.html``
    or ``X.svg`` come with ``X.md``. ``result`` is an ``ExecutionResult`` (anything with
    ``history``), or None for the bare graph; ``machine`` names the state machine in the title.
    ``engine``: see :func:`sfn_workers.local.graph_svg.svg` (Graphviz's dot when installed).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".md", ".svg", ".html", ".htm"):
        raise ValueError(f"{target}: use a .md (Mermaid), .svg or .html file name")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    run = trace(result.history) if result is not None else None
    title = title_of(result, machine)
    markdown_file = target if suffix == ".md" else target.with_suffix(".md")
    picture = target.with_suffix(".html") if suffix == ".md" else target
    markdown_file.write_text(markdown(definition, run, title), encoding="utf-8")
    if picture.suffix.lower() == ".svg":
        picture.write_text(svg(definition, run, title, engine), encoding="utf-8")
    else:
        picture.write_text(html_page(definition, run, title, engine), encoding="utf-8")
    return [target, markdown_file if target == picture else picture]
