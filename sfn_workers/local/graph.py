"""Pictures of a state machine with the path an execution took (``sfn-workers run --graph FILE``).

* ``.md``: Mermaid flowchart in Markdown (GitHub and most editors draw it);
* ``.svg``: a self-contained SVG, laid out here (no JavaScript, no network);
* ``.html``: the SVG with a legend and the execution's summary, in one self-contained file.

States the execution entered are green (``xN`` when entered more than once), states it never
reached are grey, the state it failed in is red, retries are marked ``↻N``, and the transitions
taken are drawn bold. Parallel branches and Map processors are drawn as boxes inside their state.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.local.asl.walk import nested_machines

__all__ = ["Trace", "html_page", "mermaid", "svg", "trace", "write_graph"]


# -- what the execution did ------------------------------------------------------------------------


@dataclass
class Trace:
    """The path of one execution, read from its history."""

    status: str | None = None
    entered: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)  # state -> last error it saw
    failed_state: str | None = None  # where the error began (innermost)
    failed_states: list[str] = field(default_factory=list)  # it and the states it failed on its way out
    error: str | None = None
    cause: str | None = None


_FAILURE_SUFFIXES = ("Failed", "TimedOut")


def trace(history: Iterable[Mapping[str, Any]]) -> Trace:
    """Entered states, transitions, retries and the failing state of an execution history.

    Each event's ``previousEventId`` leads back to the event before it in the same branch, so
    events are attributed to states even when Map iterations and Parallel branches interleave.
    """
    result = Trace()
    state_of: dict[int, str] = {}
    exited: dict[int, str] = {}  # id of a StateExited event -> the state it left
    failures: set[int] = set()
    compound: list[tuple[str, str]] = []  # (type, name) of the Parallel/Map states not yet left
    origin: dict[str, str] = {}  # error -> the first state that raised it most recently
    for event in history:
        kind = str(event.get("type", ""))
        eid = int(event.get("id", 0))
        previous = int(event.get("previousEventId", 0))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            state_of[eid] = name
            result.entered[name] += 1
            if kind in ("ParallelStateEntered", "MapStateEntered"):
                compound.append((kind[: -len("StateEntered")], name))
            before = exited.get(previous)
            if before is not None:
                result.transitions[(before, name)] += 1
            continue
        if kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            exited[eid] = name
            if kind in ("ParallelStateExited", "MapStateExited"):
                compound[:] = [c for c in compound if c[1] != name]
            continue
        owner = state_of.get(previous)
        if kind.startswith(("ParallelState", "MapState")):  # their previousEventId is not their branch
            kinds = [c for c in compound if kind.startswith(c[0])]
            owner = kinds[-1][1] if kinds else owner
        if owner is not None:
            state_of[eid] = owner
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        if kind in ("LambdaFunctionScheduled", "TaskScheduled") and previous in failures and owner:
            result.retries[owner] += 1
        elif kind.endswith(_FAILURE_SUFFIXES) and not kind.startswith(("Execution", "MapIteration")):
            failures.add(eid)
            error = details.get("error")
            if owner is not None and (error or not kind.startswith(("ParallelState", "MapState"))):
                result.errors[owner] = str(error or kind)
                if error and not kind.startswith(("ParallelState", "MapState")):
                    origin[str(error)] = owner
        if kind.startswith("Execution") and kind != "ExecutionStarted":
            result.status = {
                "ExecutionSucceeded": "SUCCEEDED",
                "ExecutionFailed": "FAILED",
                "ExecutionTimedOut": "TIMED_OUT",
                "ExecutionAborted": "ABORTED",
            }.get(kind, kind)
            result.error = details.get("error")
            result.cause = details.get("cause")
            if kind != "ExecutionSucceeded":
                outer = owner or (next(reversed(result.errors)) if result.errors else None)
                inner = origin.get(str(result.error), outer)
                result.failed_state = inner
                result.failed_states = [s for s in dict.fromkeys([inner, outer]) if s]
    return result


# -- the state graph -------------------------------------------------------------------------------


def _targets(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(next state, label) for every way out of a state."""
    out: list[tuple[str, str]] = []
    for choice in state.get("Choices") or []:
        if isinstance(choice, Mapping) and isinstance(choice.get("Next"), str):
            out.append((choice["Next"], _choice_label(choice)))
    if isinstance(state.get("Default"), str):
        out.append((state["Default"], "Default"))
    if isinstance(state.get("Next"), str):
        out.append((state["Next"], ""))
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
            out.append((catcher["Next"], "Catch " + ", ".join(catcher.get("ErrorEquals") or [])))
    return out


def _choice_label(rule: Mapping[str, Any]) -> str:
    variable = rule.get("Variable", "")
    for key, value in rule.items():
        if key not in ("Variable", "Next", "Comment", "Assign", "Output"):
            if key in ("And", "Or", "Not"):
                return key
            if key == "Condition":
                return str(value)[:40]
            return f"{variable} {key} {json.dumps(value)}"[:48]
    return "Choice"


def _children(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [inner for _, inner in nested_machines(state) if isinstance(inner, Mapping)]


def _status(name: str, run: Trace | None) -> str:
    if run is None:
        return "plain"
    if name in run.failed_states:
        return "failed"
    if run.entered.get(name):
        return "visited"
    return "unvisited"


def _label(name: str, state: Mapping[str, Any], run: Trace | None) -> str:
    text = f"{name} ({state.get('Type', '?')})"
    if run is not None:
        if run.entered.get(name, 0) > 1:
            text += f" x{run.entered[name]}"
        if run.retries.get(name):
            text += f" ↻{run.retries[name]}"
    return text


# -- Mermaid ---------------------------------------------------------------------------------------


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

    def shape(name: str, state: Mapping[str, Any]) -> str:
        text = _label(name, state, run).replace('"', "#quot;")
        kind = state.get("Type")
        if kind == "Choice":
            return f'{node_id(name)}{{"{text}"}}'
        if kind in ("Succeed", "Fail"):
            return f'{node_id(name)}(["{text}"])'
        return f'{node_id(name)}["{text}"]'

    def emit(machine: Mapping[str, Any], indent: str, start_id: str) -> None:
        states = machine.get("States") or {}
        start = machine.get("StartAt")
        lines.append(f"{indent}{start_id}(( ))")
        if isinstance(start, str):
            edges.append((start_id, node_id(start), "", run is not None and run.entered.get(start, 0) > 0))
        for name, state in states.items():
            if not isinstance(state, Mapping):
                continue
            children = _children(state)
            if children:
                lines.append(f'{indent}subgraph {node_id(name)}["{_label(name, state, run)}"]')
                for index, child in enumerate(children):
                    lines.append(f'{indent}  subgraph {node_id(name)}_b{index}[" "]')
                    emit(child, indent + "    ", f"{node_id(name)}_start{index}")
                    lines.append(f"{indent}  end")
                lines.append(f"{indent}end")
            else:
                lines.append(f"{indent}{shape(name, state)}")
            for target, label in _targets(state):
                taken = run is not None and run.transitions.get((name, target), 0) > 0
                edges.append((node_id(name), node_id(target), label, taken))

    emit(definition, "  ", "start")
    for index, (source, target, label, taken) in enumerate(edges):
        arrow = "==>" if taken else "-->"
        text = f'|"{label.replace(chr(34), "#quot;")}"|' if label else ""
        lines.append(f"  {source} {arrow}{text} {target}")
        if run is not None and not taken:
            lines.append(f"  linkStyle {index} stroke:#bbb,stroke-dasharray:4 3")
    lines.append("  classDef visited fill:#d9f5d9,stroke:#2e7d32,color:#1b3d1d")
    lines.append("  classDef failed fill:#fbd5d5,stroke:#c62828,stroke-width:3px,color:#5c0f0f")
    lines.append("  classDef unvisited fill:#f3f3f3,stroke:#bbb,color:#888")
    for name, identifier in ids.items():
        status = _status(name, run)
        if status != "plain":
            lines.append(f"  class {identifier} {status}")
    return "\n".join(lines) + "\n"


def markdown(definition: Mapping[str, Any], run: Trace | None = None, title: str = "State machine") -> str:
    summary = _summary(run)
    return f"# {title}\n\n{summary}\n\n```mermaid\n{mermaid(definition, run)}```\n\n{_LEGEND_MD}\n"


_LEGEND_MD = (
    "Legend: green = entered (xN: entered N times), grey = not reached, red = where the execution failed, "
    "↻N = retried N times, bold arrows = transitions taken."
)


def _summary(run: Trace | None) -> str:
    if run is None:
        return ""
    text = f"**{run.status}**"
    if run.failed_state:
        text += f" in state `{run.failed_state}`"
    if run.error:
        text += f": `{run.error}`"
    retries = sum(run.retries.values())
    text += f" — {sum(run.entered.values())} states entered, {retries} retr{'y' if retries == 1 else 'ies'}."
    return text


# -- SVG layout ------------------------------------------------------------------------------------

_NODE_H = 34
_GAP_X = 28
_GAP_Y = 46
_PAD = 16
_HEADER = 26
_COLORS = {
    "visited": ("#d9f5d9", "#2e7d32", "#1b3d1d"),
    "failed": ("#fbd5d5", "#c62828", "#5c0f0f"),
    "unvisited": ("#f3f3f3", "#bbbbbb", "#888888"),
    "plain": ("#eef3fb", "#4a6fa5", "#1d2b40"),
}


@dataclass
class _Box:
    name: str
    state: Mapping[str, Any]
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0
    inner: list[_Layout] = field(default_factory=list)


@dataclass
class _Layout:
    boxes: dict[str, _Box]
    start: str | None
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0


def _text_width(text: str) -> float:
    return 7.2 * len(text) + 24


def _layout(machine: Mapping[str, Any], run: Trace | None) -> _Layout:
    states: Mapping[str, Any] = machine.get("States") or {}
    start = machine.get("StartAt") if isinstance(machine.get("StartAt"), str) else None
    boxes: dict[str, _Box] = {}
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        label = _label(name, state, run)
        children = [_layout(child, run) for child in _children(state)]
        if children:
            width = max(_text_width(label), sum(c.width for c in children) + _GAP_X * (len(children) - 1) + 2 * _PAD)
            height = _HEADER + max(c.height for c in children) + _PAD
        else:
            width, height = max(120.0, _text_width(label)), float(_NODE_H)
        boxes[name] = _Box(name, state, width, height, inner=children)
    # Ranks: breadth-first from StartAt; unreachable states go last.
    rank: dict[str, int] = {}
    queue = [start] if start in boxes else []
    if queue:
        rank[queue[0]] = 0
    while queue:
        current = queue.pop(0)
        for target, _ in _targets(boxes[current].state):
            if target in boxes and target not in rank:
                rank[target] = rank[current] + 1
                queue.append(target)
    last = max(rank.values(), default=-1)
    for name in boxes:
        if name not in rank:
            last += 1
            rank[name] = last
    rows: dict[int, list[str]] = {}
    for name in boxes:
        rows.setdefault(rank[name], []).append(name)
    widths = {r: sum(boxes[n].width for n in names) + _GAP_X * (len(names) - 1) for r, names in rows.items()}
    total_w = max(widths.values(), default=120.0)
    y = 30.0  # room for the start dot
    for r in sorted(rows):
        names = rows[r]
        x = (total_w - widths[r]) / 2
        row_h = max(boxes[n].height for n in names)
        for n in names:
            box = boxes[n]
            box.x, box.y = x, y + (row_h - box.height) / 2
            x += box.width + _GAP_X
        y += row_h + _GAP_Y
    return _Layout(boxes, start, total_w + 80, y - _GAP_Y + 10)  # +80: room for back edges on the right


def _place(layout: _Layout, dx: float, dy: float) -> None:
    layout.x, layout.y = dx, dy
    for box in layout.boxes.values():
        box.x += dx
        box.y += dy
        cx = box.x + _PAD
        for child in box.inner:
            _place(child, cx, box.y + _HEADER)
            cx += child.width + _GAP_X


def svg(definition: Mapping[str, Any], run: Trace | None = None) -> str:
    """A self-contained SVG picture of the definition with the path of ``run`` marked."""
    layout = _layout(definition, run)
    _place(layout, 10, 10)
    parts: list[str] = []
    edge_parts: list[str] = []
    _draw(layout, run, parts, edge_parts)
    width, height = layout.width + 20, layout.height + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">\n'
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        '<marker id="arrow-dim" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#bbb"/></marker>'
        "</defs>\n" + "\n".join(parts) + "\n" + "\n".join(edge_parts) + "\n</svg>\n"
    )


def _draw(layout: _Layout, run: Trace | None, parts: list[str], edges: list[str]) -> None:
    boxes = layout.boxes
    if layout.start in boxes:
        first = boxes[layout.start]
        cx, cy = first.x + first.width / 2, layout.y + 10
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#333"/>')
        edges.append(_edge(cx, cy + 6, cx, first.y, run is None or run.entered.get(first.name, 0) > 0, ""))
    right = layout.x + layout.width - 30
    for box in boxes.values():
        status = _status(box.name, run)
        fill, stroke, ink = _COLORS[status]
        label = html.escape(_label(box.name, box.state, run))
        kind = box.state.get("Type")
        width = 3 if status == "failed" else 1.5
        if box.inner:
            parts.append(
                f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" rx="8" '
                f'fill="{fill}" fill-opacity="0.35" stroke="{stroke}" stroke-width="{width}" stroke-dasharray="6 3"/>'
            )
            parts.append(
                f'<text x="{box.x + 10:.1f}" y="{box.y + 17:.1f}" fill="{ink}" font-weight="bold">{label}</text>'
            )
            for child in box.inner:
                _draw(child, run, parts, edges)
        else:
            radius = 17 if kind in ("Succeed", "Fail") else 4 if kind != "Choice" else 12
            parts.append(
                f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
                f'rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
            )
            parts.append(
                f'<text x="{box.x + box.width / 2:.1f}" y="{box.y + box.height / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="{ink}">{label}</text>'
            )
        if run is not None and box.name in run.errors and status != "unvisited":
            error = html.escape(run.errors[box.name][:60])
            parts.append(
                f'<text x="{box.x + box.width + 4:.1f}" y="{box.y + 12:.1f}" fill="#c62828" font-size="10">'
                f"{error}</text>"
            )
        for target, label_text in _targets(box.state):
            other = boxes.get(target)
            if other is None:
                continue
            taken = run is None or run.transitions.get((box.name, target), 0) > 0
            if other.y > box.y + box.height:  # downwards: bottom centre to top centre
                edges.append(
                    _edge(
                        box.x + box.width / 2,
                        box.y + box.height,
                        other.x + other.width / 2,
                        other.y,
                        taken,
                        label_text,
                    )
                )
            else:  # back (or sideways) edge: around the right side
                right = max(right, box.x + box.width + 20, other.x + other.width + 20)
                edges.append(_back_edge(box, other, right, taken, label_text))


def _edge(x1: float, y1: float, x2: float, y2: float, taken: bool, label: str) -> str:
    color, mark, width, dash = (
        ("#555", "arrow", 2.2, "") if taken else ("#bbb", "arrow-dim", 1.2, ' stroke-dasharray="4 3"')
    )
    mid = (y1 + y2) / 2
    path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
    text = ""
    if label:
        text = (
            f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{mid - 2:.1f}" fill="{color}" font-size="10">'
            f"{html.escape(label[:48])}</text>"
        )
    return (
        f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash} marker-end="url(#{mark})"/>{text}'
    )


def _back_edge(source: _Box, target: _Box, right: float, taken: bool, label: str) -> str:
    color, mark, width, dash = (
        ("#555", "arrow", 2.2, "") if taken else ("#bbb", "arrow-dim", 1.2, ' stroke-dasharray="4 3"')
    )
    x1, y1 = source.x + source.width, source.y + source.height / 2
    x2, y2 = target.x + target.width, target.y + target.height / 2
    path = f"M{x1:.1f},{y1:.1f} C{right:.1f},{y1:.1f} {right:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    text = ""
    if label:
        text = (
            f'<text x="{right - 4:.1f}" y="{(y1 + y2) / 2:.1f}" fill="{color}" font-size="10" text-anchor="end">'
            f"{html.escape(label[:48])}</text>"
        )
    return (
        f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash} marker-end="url(#{mark})"/>{text}'
    )


# -- files -----------------------------------------------------------------------------------------


def html_page(definition: Mapping[str, Any], run: Trace | None = None, title: str = "State machine") -> str:
    """A self-contained HTML page: summary, legend, the SVG, and the Mermaid source."""
    summary = html.escape(_summary(run).replace("**", "").replace("`", ""))
    cause = f"<pre>{html.escape(run.cause)}</pre>" if run is not None and run.cause else ""
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}"
        "pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;max-height:240px;overflow:auto}"
        ".legend span{display:inline-block;padding:2px 8px;margin-right:8px;border-radius:4px}</style>"
        "</head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{summary}</p>{cause}\n"
        "<p class='legend'><span style='background:#d9f5d9'>entered (xN)</span>"
        "<span style='background:#fbd5d5'>failed here</span><span style='background:#f3f3f3'>not reached</span>"
        "<span>↻N retries</span><span>bold arrow: transition taken</span></p>\n"
        f"{svg(definition, run)}\n"
        f"<details><summary>Mermaid source</summary><pre>{html.escape(mermaid(definition, run))}</pre></details>\n"
        "</body></html>\n"
    )


def write_graph(path: str | Path, definition: Mapping[str, Any], result: Any = None) -> list[Path]:
    """Write the picture named by ``path`` and its companion; returns the files written.

    ``X.md`` (Mermaid in Markdown) comes with ``X.html`` (self-contained, SVG inside); ``X.html``
    or ``X.svg`` come with ``X.md``. ``result`` is an ``ExecutionResult`` (anything with
    ``history``), or None for the bare graph.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".md", ".svg", ".html", ".htm"):
        raise ValueError(f"{target}: use a .md (Mermaid), .svg or .html file name")
    run = trace(result.history) if result is not None else None
    title = str(getattr(result, "name", None) or "State machine")
    markdown_file = target if suffix == ".md" else target.with_suffix(".md")
    picture = target.with_suffix(".html") if suffix == ".md" else target
    markdown_file.write_text(markdown(definition, run, title), encoding="utf-8")
    if picture.suffix.lower() == ".svg":
        picture.write_text(svg(definition, run), encoding="utf-8")
    else:
        picture.write_text(html_page(definition, run, title), encoding="utf-8")
    return [target, markdown_file if target == picture else picture]
