"""Runtime limits without S3: a failure's cause costs time in proportion to its message, clients'
timeouts fit the time left, kept fields follow Step Functions' limit rather than the threshold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfn_workers import OffloadError, S3Offload
from sfn_workers._aws import Clients, timeout_step
from sfn_workers.context import _current
from sfn_workers.errors import CAUSE_LIMIT, describe
from sfn_workers.models import Output
from sfn_workers.testing import task_context


def deep_failure(depth: int, message: str) -> ValueError:
    def dive(n: int) -> None:
        if n == 0:
            raise ValueError(message)
        dive(n - 1)

    try:
        dive(depth)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_huge_message_is_serialised_about_once_not_once_per_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a 5 MB message raised 40 frames deep
    exc = deep_failure(40, "é" * 5_000_000)
    serialised: list[int] = []
    real = json.dumps

    def counting(value: Any, **kwargs: Any) -> str:
        text = real(value, **kwargs)
        serialised.append(len(text))
        return text

    monkeypatch.setattr(json, "dumps", counting)  # the json module errors.py serialises with
    # WHEN its cause is built
    error, cause = describe(exc)
    # THEN it is valid, within the limit, and the JSON made on the way is a few causes' worth,
    # not the message 40 times over
    assert error == "ValueError" and len(cause) <= CAUSE_LIMIT
    assert json.loads(cause)["errorMessage"].endswith("... [truncated]")
    assert sum(serialised) < 20 * CAUSE_LIMIT


def test_the_cause_keeps_the_innermost_frames_that_fit() -> None:
    exc = deep_failure(400, "x" * 1000)
    _, cause = describe(exc)
    document = json.loads(cause)
    assert len(cause) <= CAUSE_LIMIT and document["errorMessage"] == "x" * 1000
    assert 0 < len(document["stackTrace"]) < 400
    assert "raise ValueError(message)" in document["stackTrace"][-1]


# -- client timeouts ---------------------------------------------------------------------------


def test_timeouts_fit_the_time_left_and_the_defaults_apply_with_time_to_spare() -> None:
    assert timeout_step("s3", None) is None
    assert timeout_step("s3", 60.0) is None
    assert timeout_step("s3", 6.0) == 3.0
    assert timeout_step("stepfunctions", 6.0) == 3.0
    assert timeout_step("stepfunctions", 8.0) is None
    assert timeout_step("s3", 0.2) == 0.5  # a call is still made: the shortest rung


def test_a_client_handed_out_inside_a_task_has_timeouts_within_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a running task with 6 s to its deadline (the 62 s S3 hang of issue 17)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    clients = Clients()
    ctx = task_context(seconds=6.0)
    reset = _current.set(ctx)
    try:
        bounded = clients.get("s3")
    finally:
        _current.reset(reset)
    # THEN its connect and read timeouts together end by the deadline, with no botocore retry
    config = bounded.meta.config
    assert config.connect_timeout + config.read_timeout <= 6.0
    assert config.retries["total_max_attempts"] == 1
    # AND outside a task the usual client (and timeouts) serve, created once and cached
    usual = clients.get("s3")
    assert usual is not bounded and usual is clients.get("s3")
    assert (usual.meta.config.connect_timeout, usual.meta.config.read_timeout) == (5.0, 30.0)


def test_an_injected_client_is_used_whatever_the_time_left() -> None:
    mine = object()
    assert Clients({"s3": mine}).get("s3", remaining=0.1) is mine


# -- kept fields -------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, message: str, extra: dict[str, Any]) -> None:
        self.warnings.append((message, extra))

    def debug(self, message: str, extra: dict[str, Any]) -> None:
        pass


def test_kept_fields_over_the_threshold_but_under_256_kib_travel_inline_with_a_warning() -> None:
    # GIVEN a routing field of 100 KB kept inline, and no other large field
    offload = S3Offload(keep=["orderId", "items"])
    recorder = Recorder()
    offload._logger = recorder
    output = Output.of({"orderId": "o-1", "items": ["i" * 100] * 1000})
    # WHEN offloaded (no bucket needed: nothing moves)
    out = offload.offload(output, Clients(), "exec-1")
    # THEN it travels as it is, and a warning says why it is over the threshold
    assert out is output
    [(message, extra)] = recorder.warnings
    assert "kept inline hold the output over threshold_bytes" in message
    assert extra["threshold_bytes"] == 65_536 and extra["output_bytes_at_most"] > 100_000


def test_kept_fields_over_256_kib_fail_with_offload_error() -> None:
    offload = S3Offload(keep=["items"])
    with pytest.raises(OffloadError, match="over Step Functions' limit of 262144 bytes"):
        offload.offload(Output.of({"items": ["i" * 100] * 3000}), Clients(), "exec-1")
