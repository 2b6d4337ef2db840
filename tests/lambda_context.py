"""Kept for tests written against the old location: the fake is public in sfn_workers.testing."""

from __future__ import annotations

from sfn_workers.testing import FakeLambdaContext

__all__ = ["FakeLambdaContext"]
