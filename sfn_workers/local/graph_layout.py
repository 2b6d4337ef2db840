"""A small layered (Sugiyama-style) layout for the ``--graph`` pictures, used when Graphviz is absent.

Every edge spans at least two ranks; the ranks in between hold one small "virtual" node per edge,
and an edge's label is such a virtual node as wide as its text. Nodes, virtual nodes and labels of
one rank never overlap (they are packed left to right), and an edge runs vertically through its
own virtual nodes inside a rank and diagonally only in the empty gap between two ranks, so by
construction no edge crosses a node and no two labels overlap. Loops are drawn by reversing
their back edges for the ranking (the picture's arrows still point the way the execution goes).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["EdgeRoute", "LayoutEdge", "Placement", "place"]

Point = tuple[float, float]

GAP_X = 22.0  # between neighbours in a rank
GAP_Y = 16.0  # between two ranks (where edges run diagonally)
LANE = 8.0  # width of an edge's virtual node
LABEL_H = 14.0
MARGIN = 8.0
LOOP = 22.0  # room right of a node for an edge to itself


@dataclass(frozen=True)
class LayoutEdge:
    source: str
    target: str
    label: str = ""
    label_width: float = 0.0


@dataclass
class EdgeRoute:
    edge: LayoutEdge
    points: list[Point]  # from the source to the target
    label_at: Point | None = None  # where the label's text starts (left, baseline)


@dataclass
class Placement:
    width: float
    height: float
    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)  # top-left corners
    routes: list[EdgeRoute] = field(default_factory=list)


@dataclass
class _Slot:
    key: str  # a node's name, or "~<edge index>:<rank>" for a virtual node
    width: float
    height: float
    x: float = 0.0  # centre


def place(sizes: Mapping[str, tuple[float, float]], edges: Sequence[LayoutEdge], first: str | None) -> Placement:
    """Positions for nodes of the given (width, height) and routes for the edges between them."""
    order = list(sizes)
    loops = [e for e in edges if e.source == e.target and e.source in sizes]
    links = [e for e in edges if e.source != e.target and e.source in sizes and e.target in sizes]
    backward = _back_edges(order, links, first)
    rank = _ranks(order, links, backward)
    widths = {
        n: w
        + (LOOP + max((e.label_width for e in loops if e.source == n), default=0.0)) * any(e.source == n for e in loops)
        for n, (w, _) in sizes.items()
    }
    rows, chains = _rows(order, links, backward, rank, widths, sizes)
    _order_rows(rows, chains)
    _assign_x(rows, chains)
    tops, bands = _bands(rows)
    placement = Placement(0.0, 0.0)
    for r, row in enumerate(rows):
        for slot in row:
            if slot.key in sizes:
                _w, h = sizes[slot.key]
                left = slot.x - widths[slot.key] / 2
                placement.nodes[slot.key] = (left, tops[r] + (bands[r] - h) / 2)
    for index, edge in enumerate(links):
        placement.routes.append(
            _route(edge, index, chains[index], rank, placement, sizes, tops, bands, edge in backward)
        )
    for edge in loops:
        placement.routes.append(_loop(edge, placement.nodes[edge.source], sizes[edge.source]))
    _ports(placement, sizes)
    right = max((x + widths[n] for n, (x, _) in placement.nodes.items()), default=0.0)
    right = max([right, *(p[0] + LANE for r in placement.routes for p in r.points)])
    right = max([right, *(r.label_at[0] + r.edge.label_width for r in placement.routes if r.label_at)])
    placement.width = right + MARGIN
    placement.height = (tops[-1] + bands[-1] if rows else 0.0) + MARGIN
    return placement


def _back_edges(order: list[str], links: list[LayoutEdge], first: str | None) -> set[LayoutEdge]:
    """Edges that close a cycle, found by a depth-first walk from ``first`` (then any unvisited node)."""
    out: dict[str, list[LayoutEdge]] = {n: [] for n in order}
    for edge in links:
        out[edge.source].append(edge)
    state: dict[str, int] = {}  # 1 on the walk's path, 2 done
    backward: set[LayoutEdge] = set()
    for root in ([first] if first in out else []) + order:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(out[node]):
                stack.append((node, i + 1))
                target = out[node][i].target
                if state.get(target) == 1:
                    backward.add(out[node][i])
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
    return backward


def _ranks(order: list[str], links: list[LayoutEdge], backward: set[LayoutEdge]) -> dict[str, int]:
    """Longest-path ranks on the acyclic graph (back edges reversed), two ranks per edge."""
    forward = [(e.target, e.source) if e in backward else (e.source, e.target) for e in links]
    rank = dict.fromkeys(order, 0)
    for _ in range(len(order)):
        changed = False
        for source, target in forward:
            if rank[target] < rank[source] + 2:
                rank[target] = rank[source] + 2
                changed = True
        if not changed:
            break
    return rank


def _rows(
    order: list[str],
    links: list[LayoutEdge],
    backward: set[LayoutEdge],
    rank: dict[str, int],
    widths: Mapping[str, float],
    sizes: Mapping[str, tuple[float, float]],
) -> tuple[list[list[_Slot]], list[list[_Slot]]]:
    """The slots of each rank, and for each edge the chain of slots from its upper to its lower end."""
    rows: list[list[_Slot]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    slot_of: dict[str, _Slot] = {}
    for name in order:
        slot_of[name] = _Slot(name, widths[name], sizes[name][1])
        rows[rank[name]].append(slot_of[name])
    chains: list[list[_Slot]] = []
    for index, edge in enumerate(links):
        upper, lower = (edge.target, edge.source) if edge in backward else (edge.source, edge.target)
        chain = [slot_of[upper]]
        span = range(rank[upper] + 1, rank[lower])
        label_rank = (span.stop - 1) if edge in backward else span.start
        for r in span:
            labelled = bool(edge.label) and r == label_rank
            slot = _Slot(
                f"~{index}:{r}", edge.label_width + LANE + 6 if labelled else LANE, LABEL_H if labelled else 0.0
            )
            rows[r].append(slot)
            chain.append(slot)
        chain.append(slot_of[lower])
        chains.append(chain)
    return rows, chains


def _neighbours(chains: list[list[_Slot]]) -> dict[int, list[_Slot]]:
    near: dict[int, list[_Slot]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            near.setdefault(id(a), []).append(b)
            near.setdefault(id(b), []).append(a)
    return near


def _order_rows(rows: list[list[_Slot]], chains: list[list[_Slot]]) -> None:
    """Barycentre sweeps: each slot moves towards the mean position of its neighbours; keep the best."""
    near = _neighbours(chains)

    def crossings() -> int:
        where = {id(s): i for row in rows for i, s in enumerate(row)}
        pairs = [(where[id(a)], where[id(b)]) for chain in chains for a, b in itertools.pairwise(chain)]
        return sum(1 for i, p in enumerate(pairs) for q in pairs[i + 1 :] if (p[0] - q[0]) * (p[1] - q[1]) < 0)

    best, best_rows = crossings(), [list(row) for row in rows]
    for sweep in range(8):
        sequence = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for r in sequence:
            where = {id(s): i for row in rows for i, s in enumerate(row)}
            step = -1 if sweep % 2 == 0 else 1
            fixed = set(map(id, rows[r + step]))

            def centre(slot: _Slot, fixed: set[int] = fixed, where: dict[int, int] = where) -> float:
                others = [where[id(n)] for n in near.get(id(slot), []) if id(n) in fixed]
                return sum(others) / len(others) if others else where[id(slot)]

            rows[r].sort(key=centre)
        count = crossings()
        if count < best:
            best, best_rows = count, [list(row) for row in rows]
    rows[:] = best_rows


def _assign_x(rows: list[list[_Slot]], chains: list[list[_Slot]]) -> None:
    """Pack each rank, then pull slots towards their neighbours while keeping order and spacing."""
    near = _neighbours(chains)
    for row in rows:
        x = MARGIN
        for slot in row:
            slot.x = x + slot.width / 2
            x += slot.width + GAP_X
    for sweep in range(12):
        sequence = range(len(rows)) if sweep % 2 == 0 else range(len(rows) - 1, -1, -1)
        for r in sequence:
            row = rows[r]
            wanted = []
            for slot in row:
                others = [n.x for n in near.get(id(slot), [])]
                wanted.append(sum(others) / len(others) if others else slot.x)
            # Two packings that keep order and spacing, one pushing right, one pushing left; their mean
            # keeps both properties (the spacing constraints are linear) and is not biased to a side.
            right = list(wanted)
            for i in range(1, len(row)):
                right[i] = max(right[i], right[i - 1] + (row[i - 1].width + row[i].width) / 2 + GAP_X)
            left = list(wanted)
            for i in range(len(row) - 2, -1, -1):
                left[i] = min(left[i], left[i + 1] - (row[i + 1].width + row[i].width) / 2 - GAP_X)
            for i, slot in enumerate(row):
                slot.x = (left[i] + right[i]) / 2
    shift = min((s.x - s.width / 2 for row in rows for s in row), default=MARGIN) - MARGIN
    for row in rows:
        for slot in row:
            slot.x -= shift


def _bands(rows: list[list[_Slot]]) -> tuple[list[float], list[float]]:
    """Top and height of each rank's band."""
    tops, bands = [], []
    y = MARGIN
    for row in rows:
        height = max((s.height for s in row), default=0.0)
        tops.append(y)
        bands.append(height)
        y += height + GAP_Y
    return tops, bands


def _route(
    edge: LayoutEdge,
    index: int,
    chain: list[_Slot],
    rank: Mapping[str, int],
    placement: Placement,
    sizes: Mapping[str, tuple[float, float]],
    tops: list[float],
    bands: list[float],
    reverse: bool,
) -> EdgeRoute:
    upper, lower = chain[0].key, chain[-1].key
    ux, uy = placement.nodes[upper]
    lx, ly = placement.nodes[lower]
    top_x = ux + sizes[upper][0] / 2
    bottom_x = lx + sizes[lower][0] / 2
    ru, rl = rank[upper], rank[lower]
    points: list[Point] = [(top_x, uy + sizes[upper][1]), (top_x, tops[ru] + bands[ru])]
    label_at: Point | None = None
    for slot in chain[1:-1]:
        r = int(slot.key.rsplit(":", 1)[1])
        x = slot.x - slot.width / 2 + LANE / 2
        points += [(x, tops[r]), (x, tops[r] + bands[r])]
        if slot.height:
            label_at = (x + 5, tops[r] + bands[r] - 3)
    points += [(bottom_x, tops[rl]), (bottom_x, ly)]
    del index
    return EdgeRoute(edge, points[::-1] if reverse else points, label_at)


def _loop(edge: LayoutEdge, corner: tuple[float, float], size: tuple[float, float]) -> EdgeRoute:
    x, y = corner
    w, h = size
    right = x + w
    points = [
        (right, y + h * 0.3),
        (right + LOOP - 6, y + h * 0.3),
        (right + LOOP - 6, y + h * 0.7),
        (right, y + h * 0.7),
    ]
    return EdgeRoute(edge, points, (right + LOOP - 2, y + h / 2 + 4) if edge.label else None)


def _ports(placement: Placement, sizes: Mapping[str, tuple[float, float]]) -> None:
    """Spread the edges that leave (or enter) one side of a node over that side, in the order they go."""
    ends: dict[tuple[str, str], list[tuple[float, EdgeRoute, int]]] = {}
    for route in placement.routes:
        if route.edge.source == route.edge.target:
            continue
        pts = route.points
        for node, at, towards in ((route.edge.source, 0, 2), (route.edge.target, len(pts) - 1, len(pts) - 3)):
            side = "bottom" if pts[at][1] > placement.nodes[node][1] + 1 else "top"
            ends.setdefault((node, side), []).append((pts[towards][0], route, at))
    for (node, _), items in ends.items():
        if len(items) < 2:
            continue
        left, width = placement.nodes[node][0], sizes[node][0]
        items.sort(key=lambda item: item[0])
        for k, (_, route, at) in enumerate(items):
            x = left + width * (k + 1) / (len(items) + 1)
            neighbour = at + 1 if at == 0 else at - 1
            route.points[at] = (x, route.points[at][1])
            route.points[neighbour] = (x, route.points[neighbour][1])
