"""Writing one benchmark's results into its own section of bench/README.md, leaving the others alone."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(heading: str, text: str) -> None:
    """Replace the ``## <heading>`` section (``text`` starts with that line), or append it."""
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = text.rstrip("\n") + "\n\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    README.write_text(updated.rstrip("\n") + "\n")
