"""Settings: explicit argument > SFN_WORKERS_* variable > default; bad variables fail at decoration."""

from __future__ import annotations

import pytest

from sfn_workers import ConfigurationError, task
from sfn_workers.config import DEFAULT_TIMEOUT_MARGIN_MS, Settings, effective_margin_ms


def fn(payload: dict[str, int]) -> int:
    return len(payload)


def test_defaults_apply_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "SFN_WORKERS_HEARTBEAT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    handler = task(fn)
    assert handler.task.settings.timeout_margin_ms == DEFAULT_TIMEOUT_MARGIN_MS
    assert handler.task.settings.heartbeat_seconds is None


def test_variable_overrides_default_and_argument_overrides_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFN_WORKERS_TIMEOUT_MARGIN_MS", "2500")
    monkeypatch.setenv("SFN_WORKERS_HEARTBEAT_SECONDS", "30")
    from_env = task(fn)
    assert from_env.task.settings.timeout_margin_ms == 2500
    assert from_env.task.settings.heartbeat_seconds == 30.0
    explicit = task(timeout_margin_ms=700, heartbeat_seconds=5)(fn)
    assert explicit.task.settings.timeout_margin_ms == 700
    assert explicit.task.settings.heartbeat_seconds == 5


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


def test_zero_switches_heartbeats_off_as_argument_and_as_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert task(heartbeat_seconds=0)(fn).task.settings.heartbeat_seconds is None
    monkeypatch.setenv("SFN_WORKERS_HEARTBEAT_SECONDS", "0")
    assert task(fn).task.settings.heartbeat_seconds is None
    # an explicit 0 also wins over a variable asking for heartbeats
    monkeypatch.setenv("SFN_WORKERS_HEARTBEAT_SECONDS", "30")
    assert task(heartbeat_seconds=0)(fn).task.settings.heartbeat_seconds is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SFN_WORKERS_HEARTBEAT_SECONDS", "inf"),
        ("SFN_WORKERS_HEARTBEAT_SECONDS", "nan"),
        ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "inf"),
        ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "nan"),
        ("SFN_WORKERS_TIMEOUT_MARGIN_MS", "900000"),
    ],
)
def test_non_finite_and_too_large_variables_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        task(fn)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("heartbeat_seconds", float("inf")),
        ("heartbeat_seconds", float("nan")),
        ("timeout_margin_ms", float("nan")),
        ("timeout_margin_ms", float("inf")),
        ("timeout_margin_ms", 900_000),
        ("timeout_margin_ms", -1),
    ],
)
def test_non_finite_and_out_of_range_arguments_are_refused_naming_them(option: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=option):
        task(**{option: value})(fn)  # type: ignore[call-overload]


@pytest.mark.parametrize("option", ["token_field", "payload_field"])
def test_empty_field_names_are_refused_not_replaced_by_the_default(option: str) -> None:
    with pytest.raises(ConfigurationError, match=option):
        task(**{option: ""})(fn)  # type: ignore[call-overload]


def test_settings_hold_only_what_invocations_read() -> None:
    assert set(Settings.__slots__) == {"timeout_margin_ms", "heartbeat_seconds"}


@pytest.mark.parametrize(
    ("configured", "remaining", "expected"),
    [(1_500, 1_000, 250.0), (1_500, 60_000, 1_500.0), (0, 1_000, 0.0), (1_500, 0, 0.0)],
)
def test_the_margin_is_at_most_a_quarter_of_the_time_the_invocation_started_with(
    configured: int, remaining: float, expected: float
) -> None:
    assert effective_margin_ms(configured, remaining) == expected
