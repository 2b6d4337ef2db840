"""Settings: explicit argument > SFN_WORKERS_* variable > default; bad variables fail at decoration."""

from __future__ import annotations

import pytest

from sfn_workers import ConfigurationError, task
from sfn_workers.config import DEFAULT_TIMEOUT_MARGIN_MS, Settings


def fn(payload: dict[str, int]) -> int:
    return len(payload)


def test_defaults_apply_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "SFN_WORKERS_HEARTBEAT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    handler = task(fn)
    assert handler.settings.timeout_margin_ms == DEFAULT_TIMEOUT_MARGIN_MS
    assert handler.settings.heartbeat_seconds is None


def test_variable_overrides_default_and_argument_overrides_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFN_WORKERS_TIMEOUT_MARGIN_MS", "2500")
    monkeypatch.setenv("SFN_WORKERS_HEARTBEAT_SECONDS", "30")
    from_env = task(fn)
    assert from_env.settings.timeout_margin_ms == 2500
    assert from_env.settings.heartbeat_seconds == 30.0
    explicit = task(timeout_margin_ms=700, heartbeat_seconds=5)(fn)
    assert explicit.settings.timeout_margin_ms == 700
    assert explicit.settings.heartbeat_seconds == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "soon"),
        ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "-5"),
        ("SFN_WORKERS_HEARTBEAT_SECONDS", "-1"),
        ("SFN_WORKERS_HEARTBEAT_SECONDS", "often"),
    ],
)
def test_bad_variable_is_a_clear_error_at_decoration_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        task(fn)
    assert variable in str(info.value)
    assert repr(value) in str(info.value)


def test_heartbeat_variable_can_switch_heartbeats_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFN_WORKERS_HEARTBEAT_SECONDS", "off")
    assert Settings.resolve().heartbeat_seconds is None


def test_threshold_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="262144"):
        Settings.resolve(threshold_bytes=300_000)
