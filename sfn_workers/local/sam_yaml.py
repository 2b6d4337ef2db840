"""Reading a template or definition file (JSON or YAML with CloudFormation tags), bounded.

YAML aliases share nodes, so a 1 KB file can describe a document of billions of nodes ("billion
laughs") that expands only when later code walks it. The composed node graph is measured before
anything is built: more than :data:`MAX_NODES` nodes once aliases are expanded, more than
:data:`MAX_DEPTH` levels, or an alias that contains itself is a :class:`TemplateError` naming the
file and the line, in time linear in the file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sfn_workers.errors import ConfigurationError

__all__ = ["MAX_DEPTH", "MAX_NODES", "TemplateError", "parse_document", "read_document"]

#: Nodes of the document with every alias expanded (a large SAM template has some tens of thousands).
MAX_NODES = 1_000_000
#: Nesting levels of mappings and sequences.
MAX_DEPTH = 200


class TemplateError(ConfigurationError):
    """The template (or definition) cannot be run locally; the message says what and where."""


_loader: Any = None


def _yaml_loader() -> Any:
    global _loader
    if _loader is not None:
        return _loader
    import yaml

    # libyaml's parser when PyYAML has it (about ten times faster on a SAM template), else Python's.
    safe: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(safe):  # type: ignore[misc]
        """SafeLoader that turns ``!Ref X`` into ``{"Ref": "X"}`` and ``!Sub`` into ``{"Fn::Sub": ...}``."""

    def construct(loader: Any, suffix: str, node: Any) -> Any:
        tag = suffix
        key = "Ref" if tag == "Ref" else "Condition" if tag == "Condition" else f"Fn::{tag}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    Loader.add_multi_constructor("!", construct)
    _loader = Loader
    return Loader


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
            return [n for pair in value for n in pair]
        return value
    return []


def _labelled_children(node: Any) -> list[tuple[str, Any]]:
    value = node.value
    if not isinstance(value, list):
        return []
    if value and isinstance(value[0], tuple):
        return [(str(k.value) if not isinstance(k.value, list) else "?", v) for k, v in value]
    return [(f"[{i}]", v) for i, v in enumerate(value)]


def _path_to(root: Any, target: Any) -> str:
    """Where ``target`` sits in the document (``Resources.A.Properties``), for the error message."""
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path or "the document"
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(
            (child, f"{path}.{label}" if path and not label.startswith("[") else path + label)
            for label, child in _labelled_children(node)
        )
    return "the document"


def _refuse(root: Any, node: Any, where: str, what: str) -> TemplateError:
    return TemplateError(f"{where}: {_path_to(root, node)} (line {node.start_mark.line + 1}): {what}")


def check_node_graph(root: Any, where: str) -> None:
    """Refuse alias cycles, too deep nesting and too many nodes once aliases are expanded.

    One iterative post-order walk; each distinct node is sized once (aliases reuse the size), so a
    billion-laughs file costs as little as its text.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > MAX_NODES:
                what = f"YAML aliases expand to more than {MAX_NODES:,} nodes (a 'billion laughs' document?)"
                raise _refuse(root, node, where, what)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if len(on_path) >= MAX_DEPTH:
            raise _refuse(root, node, where, f"nested deeper than {MAX_DEPTH} levels")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            child_key = id(child)
            if child_key in on_path:
                raise _refuse(root, child, where, "a YAML alias refers to a node that contains it (a cycle)")
            if child_key not in sizes:
                stack.append((child, False))


_documents: dict[tuple[str, str], Any] = {}


def read_document(path: Path) -> Any:
    """The parsed JSON or YAML file (a fresh copy: each runner may resolve it in place). Parsed once
    per process while its text is unchanged, so ``run_execution`` per test does not re-parse it."""
    text = path.read_text(encoding="utf-8")
    key = (str(path), text)
    if key not in _documents:
        if len(_documents) >= 64:
            _documents.clear()
        _documents[key] = parse_document(path, text)
    return copy.deepcopy(_documents[key])


def parse_document(path: Path, text: str) -> Any:
    """``text`` (the content of ``path``) as a JSON value; TemplateError naming ``path`` if it is not one."""
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except RecursionError as exc:
            raise TemplateError(f"{path}: nested too deeply") from exc
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                raise TemplateError(f"{path}: not valid JSON: {exc}") from exc
    import yaml

    try:
        loader = _yaml_loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            check_node_graph(node, str(path))
            return loader.construct_document(node)  # what yaml.load does, after the check
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise TemplateError(f"{path}: nested too deeply") from exc
