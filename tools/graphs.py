"""Strongly connected components of a directed graph, shared by the repository's checkers.

``check_asl`` looks for loops between states, ``check_architecture`` for import cycles: one
iterative Tarjan serves both (iterative, so a deep graph cannot hit Python's recursion limit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator


def strongly_connected(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> Iterator[list[str]]:
    """Every strongly connected component (members sorted), in the order Tarjan's algorithm closes them.

    ``nodes`` are visited in the order given, and each node's ``successors`` in theirs; successors
    that are not among ``nodes`` are ignored.
    """
    order = list(nodes)
    members = set(order)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    work: list[tuple[str, Iterator[str]]] = []  # the depth-first path, each node with its unvisited successors

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, iter([s for s in successors(node) if s in members])))

    for root in order:
        if root in index:
            continue
        enter(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                yield sorted(component)
