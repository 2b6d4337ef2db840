"""The code blocks of README.md and docs/*.md, and the directives above them.

A fenced block whose language is python, sh, bash, shell or console is run by tests/docs; any other
language (text, json, yaml, mermaid, none) is an example of output or a layout, and is not run.
An HTML comment right above a block (blank lines between are allowed) steers it:

* ``<!-- docs-test: skip REASON -->``: not run; the test reports REASON as its skip reason.
* ``<!-- docs-test: background -->`` (sh/console): started, and left running for the page's later
  blocks (a server), stopped when the page is done.
* ``<!-- docs-test: exit N -->`` (sh/console): the block ends with exit status N (a documented failing
  run, e.g. ``sfn-workers run`` on an execution that fails exits 1).
* ``<!-- docs-test: setup ... -->``: the lines after ``setup`` run (hidden, same language) just before
  the block: the names a fragment assumes (``Order``, a handler), so the shown code stays short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh", "console": "console"}

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<kind>skip|background|setup|exit)\b(?P<text>.*?)-->", re.S)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code, and the directive above it."""

    page: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str  # python | sh | console, or the block's own language when it is not run
    code: str
    directive: str = ""  # skip | background | setup | exit | ""
    text: str = ""  # the skip reason, the setup code, or the expected exit status

    @property
    def runnable(self) -> bool:
        return self.lang in ("python", "sh", "console")

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every docs page, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        code = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        lang = opening["lang"].lower()
        directive, text = _directive_above(lines, index)
        found.append(Block(page, index + 1, RUN.get(lang, lang or "none"), code, directive, text))
        index = end + 1
    return found


def _directive_above(lines: list[str], index: int) -> tuple[str, str]:
    """The ``docs-test`` comment ending on the last non-blank line above ``index``."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0 or not lines[above].rstrip().endswith("-->"):
        return "", ""
    start = above
    while start > 0 and "<!--" not in lines[start]:
        start -= 1
    match = _DIRECTIVE.search("\n".join(lines[start : above + 1]))
    if match is None:
        return "", ""
    kind, text = match["kind"], match["text"]
    return kind, (text.strip("\n") + "\n" if kind == "setup" else " ".join(text.split()))


def console_commands(code: str) -> str:
    """The commands of a console block (``$ `` lines and their ``\\`` continuations) as a script."""
    script: list[str] = []
    continued = False
    for line in code.splitlines():
        if line.startswith("$ ") or continued:
            script.append(line[2:] if line.startswith("$ ") else line)
            continued = line.rstrip().endswith("\\")
    return "\n".join(script) + "\n"
