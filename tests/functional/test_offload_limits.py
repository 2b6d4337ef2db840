"""Offloading's limits against S3 over real HTTP (moto's server, through the ``aws`` fixture).

What a user sees: hostile pointer sets are refused with ``PayloadPointerError`` without filling the
memory; identical pointers cost one GET; a failed multi-field offload leaves no objects behind;
keys written before the shard still resolve; ``resolve_pointers`` works outside ``@task``; an S3
that hangs cannot hold a task past its deadline.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sfn_workers import OffloadError, PayloadPointerError, S3Offload, task
from sfn_workers._aws import Clients
from sfn_workers.models import Output, json_text
from sfn_workers.offload import POINTER_FIELD, resolve_pointers
from sfn_workers.retries import RetryPolicy
from tests.lambda_context import FakeLambdaContext

BUCKET = "limits-bkt"
MiB = 1024 * 1024


@pytest.fixture
def s3(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh boto3 S3 client on the moto server (its own, so hooks stay in this test)."""
    for name in ("SFN_WORKERS_BUCKET", "SFN_WORKERS_PREFIX", "SFN_WORKERS_THRESHOLD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client


def store(s3: Any, key: str, body: bytes, encoding: str = "json+gzip") -> dict[str, Any]:
    """Put ``body`` as an offloaded object would be stored; its pointer."""
    stored = gzip.compress(body, 9) if encoding == "json+gzip" else body
    s3.put_object(Bucket=BUCKET, Key=key, Body=stored)
    return {
        POINTER_FIELD: {
            "v": 1,
            "bucket": BUCKET,
            "key": key,
            "bytes": len(stored),
            "sha256": hashlib.sha256(stored).hexdigest(),
            "encoding": encoding,
        }
    }


def counting_gets(s3: Any) -> list[str]:
    keys: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])

    s3.meta.events.register("provide-client-params.s3.GetObject", count)
    return keys


def peak_bytes(action: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak Python memory traced while ``action`` runs (moto's server thread included), and its error."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        action()
    except Exception as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


# -- the total budget --------------------------------------------------------------------------


def test_the_default_max_bytes_is_a_share_of_the_lambdas_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    assert S3Offload(bucket=BUCKET).max_bytes == 16 * MiB
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    assert S3Offload(bucket=BUCKET).max_bytes == 4 * MiB
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    assert S3Offload(bucket=BUCKET).max_bytes == 64 * MiB
    assert S3Offload(bucket=BUCKET, max_bytes=1000).max_bytes == 1000


def test_hostile_pointer_sets_are_refused_within_a_bounded_memory(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a 512 MB Lambda (max_bytes 16 MiB by default) and three hostile inputs:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    offload = S3Offload(bucket=BUCKET)
    one_mib = store(s3, "sfn-workers/aa/e/one-mib.json", json_text(["x" * (MiB - 10)]).encode())
    #   60 copies of one pointer to 1 MiB (12 KB of input)
    copies = {"lines": [one_mib] * 60}
    #   one pointer to an object that holds 2,000 pointers to that 1 MiB
    many = store(s3, "sfn-workers/aa/e/many.json", json_text([one_mib] * 2000).encode())
    #   a gzip of about 65 KB that expands to 64 MiB of [{},{},...]
    bomb_json = b"[" + b"{}," * (64 * MiB // 3 - 1) + b"{}]"
    bomb = store(s3, "sfn-workers/aa/e/bomb.json", bomb_json)
    del bomb_json
    assert bomb[POINTER_FIELD]["bytes"] < 100_000
    gets = counting_gets(s3)
    bound = 3 * offload.max_bytes  # stated bound: peak traced memory under 3x max_bytes (48 MiB)
    for hostile in (copies, many, bomb):
        # WHEN each is resolved
        peak, error = peak_bytes(functools.partial(offload.resolve, hostile, Clients({"s3": s3})))
        # THEN it is refused for its total size, and the memory stayed far from the budget's multiple
        assert isinstance(error, PayloadPointerError), error
        assert "over max_bytes=16777216" in str(error)
        assert peak < bound, f"peak {peak / MiB:.1f} MiB"
    # AND the 1 MiB object was fetched once for its 60 copies, once more for the 2,000
    assert gets.count("sfn-workers/aa/e/one-mib.json") <= 2


def test_identical_pointers_are_fetched_once_and_counted_per_occurrence(s3: Any) -> None:
    # GIVEN ten copies of a pointer to 100 KB, within a total of 2 MB
    pointer = store(s3, "sfn-workers/bb/e/shared.json", json_text({"blob": "y" * 100_000}).encode())
    gets = counting_gets(s3)
    offload = S3Offload(bucket=BUCKET, max_bytes=2_000_000)
    # WHEN resolved
    resolved = offload.resolve({"a": [pointer] * 10}, Clients({"s3": s3}))
    # THEN every copy has the value and there was one GET
    assert resolved == {"a": [{"blob": "y" * 100_000}] * 10}
    assert gets == ["sfn-workers/bb/e/shared.json"]
    # AND the same ten copies over a total of 900 KB are refused: each occurrence counts
    with pytest.raises(PayloadPointerError, match="over max_bytes=900000"):
        S3Offload(bucket=BUCKET, max_bytes=900_000).resolve({"a": [pointer] * 10}, Clients({"s3": s3}))


def test_pointers_nested_beyond_two_levels_are_refused(s3: Any) -> None:
    leaf = store(s3, "sfn-workers/cc/e/0.json", b'"leaf"', encoding="json")
    level1 = store(s3, "sfn-workers/cc/e/1.json", json_text([leaf]).encode(), encoding="json")
    level2 = store(s3, "sfn-workers/cc/e/2.json", json_text([level1]).encode(), encoding="json")
    level3 = store(s3, "sfn-workers/cc/e/3.json", json_text([level2]).encode(), encoding="json")
    offload = S3Offload(bucket=BUCKET)
    assert offload.resolve({"x": level2}, Clients({"s3": s3})) == {"x": [["leaf"]]}
    with pytest.raises(PayloadPointerError, match="nested more than 2 levels"):
        offload.resolve({"x": level3}, Clients({"s3": s3}))


# -- keys --------------------------------------------------------------------------------------


def test_keys_spread_over_shards_and_keys_without_a_shard_still_resolve(s3: Any) -> None:
    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096, compress=False)
    # GIVEN twenty outputs of one execution offloaded
    keys = [
        next(iter(offload.offload(Output.of(["z" * 5000]), Clients({"s3": s3}), "exec-1").value.values()))["key"]
        for _ in range(20)
    ]
    # THEN their keys are <prefix><shard>/<scope>/<uuid>.json over more than one shard
    assert len({key.split("/")[1] for key in keys}) > 1
    assert all(key.split("/")[2] == "exec-1" for key in keys)
    # AND an object written the old way (no shard) under the prefix is still accepted
    old = store(s3, "sfn-workers/exec-0/0f0e0d0c-0000-4000-8000-000000000000.json", b'{"old":true}', "json")
    assert offload.resolve(old, Clients({"s3": s3})) == {"old": True}


# -- a failed multi-field offload ---------------------------------------------------------------


def test_a_failed_field_write_deletes_the_fields_already_written(s3: Any) -> None:
    # GIVEN three large fields, the write of the one holding "b"s failing (the connection drops)
    from botocore.exceptions import EndpointConnectionError

    def fail_b(params: dict[str, Any], **_: Any) -> None:
        body = params["Body"]
        if isinstance(body, bytes) and body[:2] == b'"b':
            raise EndpointConnectionError(endpoint_url="http://s3")

    s3.meta.events.register("provide-client-params.s3.PutObject", fail_b)
    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096, compress=False, retry_policy=RetryPolicy(attempts=1))
    doc = {"a": "a" * 10_000, "b": "b" * 10_000, "c": "c" * 10_000}
    # WHEN offloaded
    with pytest.raises(OffloadError, match="EndpointConnectionError"):
        offload.offload(Output.of(doc), Clients({"s3": s3}), "exec-fail")
    # THEN nothing of that output is left in the bucket
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="sfn-workers/")
    assert listed.get("KeyCount", 0) == 0, [o["Key"] for o in listed.get("Contents", [])]


# -- outside @task -----------------------------------------------------------------------------


def test_resolve_pointers_serves_code_that_does_not_use_task(s3: Any) -> None:
    # GIVEN an output offloaded by a task
    writer = S3Offload(bucket=BUCKET, threshold_bytes=4096, keep=["orderId"])
    travelled = json.loads(
        writer.offload(Output.of({"orderId": "o-1", "lines": ["l"] * 5000}), Clients({"s3": s3}), "e").text
    )
    assert POINTER_FIELD in travelled["lines"]
    # WHEN a plain Lambda resolves it with the same rules
    event = {"detail": travelled}
    resolved = resolve_pointers(event, offload=S3Offload(bucket=BUCKET), s3=s3)
    # THEN it sees the values; its event is untouched
    assert resolved == {"detail": {"orderId": "o-1", "lines": ["l"] * 5000}}
    assert POINTER_FIELD in event["detail"]["lines"]
    # AND the rules hold there too
    with pytest.raises(PayloadPointerError, match="not allowed"):
        resolve_pointers(event, offload=S3Offload(bucket="other-bkt"), s3=s3)


# -- the deadline ------------------------------------------------------------------------------


@pytest.fixture
def hanging_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a hanging S3)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    try:
        yield url
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.timeout(30)  # before the fix the read timeout alone was 30 s, twice
def test_a_hanging_s3_cannot_hold_a_task_past_its_deadline(hanging_s3: str) -> None:
    # GIVEN a task with 4 s left (3 s to its deadline) whose input holds a pointer
    offload = S3Offload(bucket=BUCKET, retry_policy=RetryPolicy(attempts=1))
    clients = Clients()

    @task(offload=offload, clients=clients, timeout_margin_ms=1000)
    def handler(payload: Any) -> Any:
        return payload

    pointer = {POINTER_FIELD: {"v": 1, "bucket": BUCKET, "key": "sfn-workers/aa/e/x.json", "bytes": 2}}
    pointer[POINTER_FIELD] |= {"sha256": "0" * 64, "encoding": "json"}
    # WHEN S3 never answers
    with pytest.raises(OffloadError, match=r"could not read .*[Rr]ead timeout") as caught:
        handler({"x": pointer}, FakeLambdaContext(4.0))
    # THEN the call gave up on a timeout that fits the time left, and botocore did not try again
    assert "ReadTimeoutError" in type(caught.value.__cause__).__name__
    config = clients.get("s3", remaining=3.0).meta.config
    assert config.connect_timeout + config.read_timeout <= 3.0
    assert config.retries["total_max_attempts"] == 1
