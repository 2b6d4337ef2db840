"""AWS's public prices and default quotas, as `sfn-workers estimate` uses them: one data file.

The numbers live in ``data/aws_facts.json`` with their source and the date they were read, so that
updating a price is a one-line data change a reviewer can check against the source. A user's own
file (``--facts FILE``, or ``load_facts(overrides=...)``) replaces only the keys it holds: a
negotiated price, another region's quotas, a raised Lambda concurrency limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Fact", "Facts", "load_facts"]


@dataclass(frozen=True)
class Fact:
    """One price (USD per unit) or quota (per second), with where it comes from."""

    value: float
    source: str
    as_of: str
    note: str = ""
    burst: float | None = None


@dataclass(frozen=True)
class Facts:
    """Prices and quotas by key (see data/aws_facts.json for the keys)."""

    region: str
    prices: Mapping[str, Fact]
    quotas: Mapping[str, Fact]

    def price(self, key: str) -> float:
        return self.prices[key].value

    def quota(self, key: str) -> float:
        return self.quotas[key].value


def _facts(section: Mapping[str, Any], where: str) -> dict[str, Fact]:
    found: dict[str, Fact] = {}
    for key, entry in section.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("value"), int | float):
            raise ValueError(f"{where}: {key} needs a numeric 'value' (and a 'source')")
        burst = entry.get("burst")
        found[key] = Fact(
            value=float(entry["value"]),
            source=str(entry.get("source", "your own figure")),
            as_of=str(entry.get("as_of", "")),
            note=str(entry.get("note", "")),
            burst=float(burst) if isinstance(burst, int | float) else None,
        )
    return found


def load_facts(overrides: str | Path | Mapping[str, Any] | None = None) -> Facts:
    """The shipped facts, with ``overrides`` (a path or a mapping of the same shape) applied."""
    shipped = json.loads(resources.files("sfn_workers.local").joinpath("data/aws_facts.json").read_text("utf-8"))
    prices = _facts(shipped["prices"], "aws_facts.json")
    quotas = _facts(shipped["quotas"], "aws_facts.json")
    region = str(shipped.get("region", "us-east-1"))
    if overrides is not None:
        where = str(overrides) if isinstance(overrides, str | Path) else "overrides"
        data: Any = overrides
        if isinstance(overrides, str | Path):
            data = json.loads(Path(overrides).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a JSON object with 'prices' and/or 'quotas'")
        unknown = (set(data.get("prices", {})) - set(prices)) | (set(data.get("quotas", {})) - set(quotas))
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {sorted(unknown)} (known: see sfn_workers/local/data/aws_facts.json)"
            )
        prices.update(_facts(data.get("prices", {}), where))
        quotas.update(_facts(data.get("quotas", {}), where))
        region = str(data.get("region", region))
    return Facts(region=region, prices=prices, quotas=quotas)
