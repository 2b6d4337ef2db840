"""The public names are exactly the documented ones (docs/api.md lists them)."""

from __future__ import annotations

import re
from pathlib import Path

import sfn_workers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_names() -> set[str]:
    # Every public name is a level-3 heading in docs/api.md: "### `task`".
    return set(re.findall(r"^### `([A-Za-z_][A-Za-z0-9_]*)`", DOCS.read_text(), flags=re.M))


def test_all_is_exactly_the_documented_api() -> None:
    assert set(sfn_workers.__all__) == documented_names()


def test_every_exported_name_exists_and_says_where_it_lives() -> None:
    for name in sfn_workers.__all__:
        member = getattr(sfn_workers, name)
        if name == "__version__":
            continue
        assert member.__module__.startswith("sfn_workers"), name
        assert (member.__doc__ or "").strip(), f"{name} has no docstring"
