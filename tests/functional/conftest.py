"""Fixtures of the functional layer (real HTTP to local emulators)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sfn_workers.local.sfn_endpoint import MemoryTokens, SfnEndpoint
from tests.functional.test_callbacks_support import wait_for_no_callback_threads

if TYPE_CHECKING:
    from sfn_workers.local.emulator import Emulator
    from sfn_workers.local.services import Services


@pytest.fixture
def tokens(sfn_endpoint: SfnEndpoint) -> MemoryTokens:
    """The strict in-memory task-token backend behind the ``sfn_endpoint`` fixture."""
    assert isinstance(sfn_endpoint.backend, MemoryTokens)
    return sfn_endpoint.backend


@pytest.fixture
def no_threads_left_behind() -> Iterator[None]:
    """Fails a test that leaves a watchdog or heartbeat thread running after its invocation."""
    yield
    assert wait_for_no_callback_threads() == []


@pytest.fixture
def services(emulator: Emulator) -> Iterator[Services]:
    """The integrations' client against the requesting module's ``emulator`` fixture (closed after)."""
    from sfn_workers.local.services import Services

    services = Services(emulator.url)
    yield services
    services.close()
