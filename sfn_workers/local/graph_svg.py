"""The SVG picture of a state machine and an execution's path through it.

Laid out by Graphviz's ``dot`` when it is installed (``engine="dot"``), else by the layered layout
in graph_layout.py (``engine="layered"``): in both, edges go around states and labels do not
overlap. Either way the SVG is self-contained (no script, no font or network access to view it),
and marked up alike: ``<g class="node">``, ``<g class="cluster">`` (a Parallel or Map state, its
branches inside) and ``<g class="edge">``, each with a ``<title>`` naming it.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sfn_workers.local.graph_layout import LayoutEdge, Placement, place
from sfn_workers.local.graph_model import Trace, children, label, status, targets

__all__ = ["ENGINES", "svg"]

ENGINES = ("auto", "dot", "layered")
FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
COLORS = {
    "visited": ("#d9f5d9", "#2e7d32", "#1b3d1d"),
    "failed": ("#fbd5d5", "#c62828", "#5c0f0f"),
    "unvisited": ("#f3f3f3", "#bbbbbb", "#888888"),
    "plain": ("#eef3fb", "#4a6fa5", "#1d2b40"),
}
_START = "\0start"
_MARKER = (  # arrowheads of one size, whatever the line's width
    'viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"'
)
_PAD, _HEADER, _LINE = 12.0, 24.0, 14.0


def _width(text: str, size: float = 12.0) -> float:
    """A generous estimate of the text's width (wide fonts such as DejaVu Sans and Verdana fit)."""
    return 0.66 * size * len(text)


def _wrap(text: str, limit: int = 34) -> list[str]:
    """An edge label in lines of at most about ``limit`` characters, broken after commas or spaces."""
    lines: list[str] = []
    for word in text.replace(", ", ",\0").split("\0"):
        if lines and len(lines[-1]) + len(word) <= limit:
            lines[-1] += word if lines[-1].endswith(",") else " " + word
        else:
            lines.append(word)
    return lines


def _error_line(name: str, run: Trace | None) -> str:
    if run is None or name not in run.errors or not run.entered.get(name):
        return ""
    return ("✗ " if name in run.failed_states else "saw ") + run.errors[name][:40]


def _taken(run: Trace | None, source: str, target: str) -> bool:
    if source == _START:
        return run is None or run.entered.get(target, 0) > 0
    return run is None or run.transitions.get((source, target), 0) > 0


# -- the embedded layered layout -----------------------------------------------------------------


@dataclass
class _Part:
    """One machine (the definition, a Parallel branch, a Map processor) laid out at the origin."""

    machine: Mapping[str, Any]
    sizes: dict[str, tuple[float, float]]
    inner: dict[str, list[_Part]]
    placement: Placement
    labels: dict[int, list[str]] = field(default_factory=dict)


def _part(machine: Mapping[str, Any], run: Trace | None) -> _Part:
    states: Mapping[str, Any] = machine.get("States") or {}
    sizes: dict[str, tuple[float, float]] = {_START: (12.0, 12.0)}
    inner: dict[str, list[_Part]] = {}
    edges: list[LayoutEdge] = []
    start = machine.get("StartAt")
    if isinstance(start, str) and start in states:
        edges.append(LayoutEdge(_START, start))
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        text = label(name, state, run)
        parts = [_part(child, run) for child in children(state)]
        if parts:
            inner[name] = parts
            width = sum(p.placement.width for p in parts) + _PAD * (len(parts) + 1)
            height = _HEADER + max(p.placement.height for p in parts) + _PAD
            sizes[name] = (max(width, _width(text) + 2 * _PAD), height)
        else:
            lines = [text] + ([_error_line(name, run)] if _error_line(name, run) else [])
            sizes[name] = (max(90.0, max(_width(t) for t in lines) + 20), 16.0 + _LINE * len(lines))
        for target, text in targets(state):
            lines = _wrap(text) if text else []
            edges.append(LayoutEdge(name, target, "\n".join(lines), max((_width(t, 10) for t in lines), default=0.0)))
    placement = place(sizes, edges, _START)
    return _Part(machine, sizes, inner, placement)


def _draw_part(part: _Part, run: Trace | None, ox: float, oy: float, out: list[str]) -> None:
    states: Mapping[str, Any] = part.machine.get("States") or {}
    for route in part.placement.routes:
        edge = route.edge
        taken = _taken(run, edge.source, edge.target)
        color, mark, width, dash = ("#555", "arrow", 2.2, "") if taken else ("#aaa", "arrow-dim", 1.2, "4 3")
        points = " L".join(f"{x + ox:.1f},{y + oy:.1f}" for x, y in route.points)
        name = f"{'start' if edge.source == _START else edge.source}->{edge.target}"
        out.append(f'<g class="edge"><title>{html.escape(name)}</title>')
        out.append(
            f'<path d="M{points}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f' marker-end="url(#{mark})"/>'
        )
        if route.label_at is not None and edge.label:
            lines = edge.label.split("\n")
            x, y = route.label_at[0] + ox, route.label_at[1] + oy - 12 * (len(lines) - 1)
            spans = "".join(
                f'<tspan x="{x:.1f}" y="{y + 12 * i:.1f}">{html.escape(t)}</tspan>' for i, t in enumerate(lines)
            )
            out.append(f'<text class="edge-label" font-size="10" fill="{color}">{spans}</text>')
        out.append("</g>")
    for name, (x, y) in part.placement.nodes.items():
        w, h = part.sizes[name]
        x, y = x + ox, y + oy
        if name == _START:
            out.append(
                f'<g class="node start"><title>start</title>'
                f'<circle cx="{x + w / 2:.1f}" cy="{y + h / 2:.1f}" r="{w / 2:.1f}" fill="#333"/></g>'
            )
            continue
        state = states[name]
        fill, stroke, ink = COLORS[status(name, run)]
        line = 3 if status(name, run) == "failed" else 1.5
        text = html.escape(label(name, state, run))
        if name in part.inner:
            out.append(
                f'<g class="cluster"><title>{html.escape(name)}</title><rect x="{x:.1f}" y="{y:.1f}" '
                f'width="{w:.1f}" height="{h:.1f}" rx="8" fill="{fill}" fill-opacity="0.35" stroke="{stroke}" '
                f'stroke-width="{line}" stroke-dasharray="6 3"/><text x="{x + _PAD:.1f}" y="{y + 17:.1f}" '
                f'fill="{ink}" font-weight="bold">{text}</text></g>'
            )
            cx = x + _PAD
            for child in part.inner[name]:
                _draw_part(child, run, cx, y + _HEADER, out)
                cx += child.placement.width + _PAD
            continue
        kind = state.get("Type")
        radius = h / 2 if kind in ("Succeed", "Fail") else 12 if kind == "Choice" else 4
        error = _error_line(name, run)
        out.append(
            f'<g class="node"><title>{html.escape(name)}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" rx="{radius:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="{line}"/>'
            f'<text x="{x + w / 2:.1f}" y="{y + 20:.1f}" text-anchor="middle" fill="{ink}">{text}</text>'
            + (
                f'<text x="{x + w / 2:.1f}" y="{y + 20 + _LINE:.1f}" text-anchor="middle" fill="#c62828" '
                f'font-size="11">{html.escape(error)}</text>'
                if error
                else ""
            )
            + "</g>"
        )


def _layered(definition: Mapping[str, Any], run: Trace | None, title: str) -> str:
    part = _part(definition, run)
    body: list[str] = []
    _draw_part(part, run, 10, 10, body)
    width, height = part.placement.width + 20, part.placement.height + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="12">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<defs>"
        f'<marker id="arrow" {_MARKER}><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        f'<marker id="arrow-dim" {_MARKER}><path d="M0,0 L10,5 L0,10 z" fill="#aaa"/></marker>'
        "</defs>\n" + "\n".join(body) + "\n</svg>\n"
    )


# -- Graphviz ------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_source(definition: Mapping[str, Any], run: Trace | None, title: str) -> str:
    lines = [
        "digraph sfn {",
        f"  graph [rankdir=TB, compound=true, nodesep=0.35, ranksep=0.45, fontname={_quote(FONT)}, "
        + (f"label={_quote(title)}, labelloc=t, fontsize=14];" if title else "];"),
        f'  node [shape=box, style="rounded,filled", fontname={_quote(FONT)}, fontsize=11, margin="0.15,0.06"];',
        f"  edge [fontname={_quote(FONT)}, fontsize=9, arrowsize=0.7];",
    ]
    counter = iter(range(1_000_000))
    anchor: dict[str, str] = {}  # a compound state -> the point inside its cluster that edges attach to

    def emit(machine: Mapping[str, Any], indent: str, ids: dict[str, str]) -> None:
        states: Mapping[str, Any] = machine.get("States") or {}
        start = f"start{next(counter)}"
        lines.append(f'{indent}{start} [shape=circle, label="", width=0.14, style=filled, fillcolor="#333333"];')
        ids.update({name: f"s{next(counter)}" for name in states})
        edges: list[tuple[str, str, str, bool]] = []  # formatted once every cluster has its anchor
        if isinstance(machine.get("StartAt"), str) and machine["StartAt"] in ids:
            edges.append((start, machine["StartAt"], "", _taken(run, _START, machine["StartAt"])))
        for name, state in states.items():
            if not isinstance(state, Mapping):
                continue
            fill, stroke, ink = COLORS[status(name, run)]
            text = label(name, state, run)
            width = 3 if status(name, run) == "failed" else 1.5
            inner = children(state)
            if inner:
                lines.append(
                    f"{indent}subgraph cluster_{ids[name]} {{ label={_quote(text)}; tooltip={_quote(name)}; "
                    f'style="rounded,dashed,filled"; fillcolor="{fill}"; color="{stroke}"; fontcolor="{ink}"; '
                    f"penwidth={width};"
                )
                point = f"p{ids[name]}"
                lines.append(f'{indent}  {point} [shape=point, width=0.01, style=invis, label=""];')
                anchor[ids[name]] = point
                for index, child in enumerate(inner):
                    lines.append(f'{indent}  subgraph cluster_{ids[name]}_{index} {{ label=""; style=invis;')
                    emit(child, indent + "    ", ids)
                    lines.append(f"{indent}  }}")
                lines.append(f"{indent}}}")
            else:
                error = _error_line(name, run)
                shape = "ellipse" if state.get("Type") in ("Succeed", "Fail") else "box"
                body = html.escape(text) + (f'<BR/><FONT COLOR="#c62828">{html.escape(error)}</FONT>' if error else "")
                lines.append(
                    f"{indent}{ids[name]} [label=<{body}>, tooltip={_quote(name)}, shape={shape}, "
                    f'fillcolor="{fill}", color="{stroke}", fontcolor="{ink}", penwidth={width}];'
                )
            for target, text in targets(state):
                if target in states:
                    edges.append((name, target, text, _taken(run, name, target)))
        lines.extend(indent + _dot_edge(*edge, ids, anchor) for edge in edges)

    emit(definition, "  ", {})
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_edge(source: str, target: str, text: str, taken: bool, ids: dict[str, str], anchor: dict[str, str]) -> str:
    a, b = ids.get(source, source), ids.get(target, target)
    attributes = [
        'color="#555555", penwidth=2.2' if taken else 'color="#aaaaaa", style=dashed, penwidth=1.1',
    ]
    if text:
        attributes.append(f"label={_quote(chr(10).join(_wrap(text)))}")
        attributes.append(f'fontcolor="{"#555555" if taken else "#999999"}"')
    if a in anchor:
        attributes.append(f"ltail=cluster_{a}")
        a = anchor[a]
    if b in anchor:
        attributes.append(f"lhead=cluster_{b}")
        b = anchor[b]
    return f"{a} -> {b} [{', '.join(attributes)}];"


def _graphviz(definition: Mapping[str, Any], run: Trace | None, title: str) -> str:
    source = _dot_source(definition, run, title)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("Graphviz's dot is not on PATH (engine='layered' needs none)")
    done = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    text = done.stdout.decode()
    return text[text.index("<svg") :]


def svg(definition: Mapping[str, Any], run: Trace | None = None, title: str = "", engine: str = "auto") -> str:
    """A self-contained SVG picture of the definition with the path of ``run`` marked.

    ``engine``: ``"dot"`` (Graphviz), ``"layered"`` (built in), or ``"auto"``: dot when it is on PATH.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "dot" or (engine == "auto" and shutil.which("dot")):
        return _graphviz(definition, run, title)
    return _layered(definition, run, title)
