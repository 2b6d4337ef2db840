"""Offloading against S3 over real HTTP (moto's server, through the ``aws`` fixture).

What a user sees: an output over the threshold leaves as pointers and comes back equal; every
pointer that breaks a rule is refused with a message naming the rule; S3 failing is an
``OffloadError``; a chain of two handlers passes 1 MB through a pointer.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sfn_workers import OffloadError, PayloadPointerError, S3Offload, task
from sfn_workers._aws import Clients
from sfn_workers.models import Output, json_text
from sfn_workers.offload import POINTER_FIELD, utf8_len
from sfn_workers.retries import RetryPolicy

BUCKET = "payloads-bkt"


@functools.cache
def clients() -> Clients:
    """One set of clients for this module, created inside the first test (with the moto endpoint set):
    a boto3 client costs more to create than most of these tests take."""
    return Clients()


@pytest.fixture
def s3(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client on the moto server, with the payload bucket created."""
    for name in ("SFN_WORKERS_BUCKET", "SFN_WORKERS_PREFIX", "SFN_WORKERS_THRESHOLD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    client = clients().get("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client


def no_sleep_policy() -> RetryPolicy:
    return RetryPolicy(attempts=2, sleep=lambda _: None, budget=None)


def order(n_items: int) -> dict[str, Any]:
    return {
        "orderId": "o-42",
        "inStock": True,
        "customer": {"name": "Zoë Ærøskøbing", "city": "Kraków"},
        "items": [{"sku": f"SKU-{i:06d}", "name": "Gadget ☂", "qty": i % 7 + 1, "price": 9.99} for i in range(n_items)],
    }


def pointers_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if POINTER_FIELD in value:
            return [value[POINTER_FIELD]]
        return [p for v in value.values() for p in pointers_in(v)]
    if isinstance(value, list):
        return [p for v in value for p in pointers_in(v)]
    return []


# -- the property ------------------------------------------------------------------------------

chars = st.characters(exclude_categories=["Cs"])  # lone surrogates are not UTF-8
small_text = st.text(chars, max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | small_text
small_json = st.recursive(
    scalars, lambda k: st.lists(k, max_size=4) | st.dictionaries(small_text, k, max_size=4), max_leaves=12
)
KEEP = ("orderId", "inStock")
MAX_DOCUMENT = 2 * 1024 * 1024


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Nested unicode JSON of 0 to 2 MB: small random structure, large parts by repetition
    (so hypothesis need not draw every byte), within one 2 MB budget per document."""
    budget = MAX_DOCUMENT - 200

    def part() -> Any:
        nonlocal budget
        kind = draw(st.sampled_from(["small", "text", "list"]))
        if kind == "small":
            return draw(small_json)
        unit_value: Any = draw(st.text(chars, min_size=1, max_size=4) if kind == "text" else small_json)
        unit = utf8_len(json_text(unit_value)) + (-2 if kind == "text" else 1)
        n = draw(st.integers(0, max(0, budget) // max(unit, 1)))
        budget -= n * unit
        return unit_value * n if kind == "text" else [unit_value] * n

    shape = draw(st.sampled_from(["object", "object", "list", "text"]))
    if shape == "text":
        return part()
    if shape == "list":
        return [part() for _ in range(draw(st.integers(0, 3)))]
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["orderId"] = draw(small_text)
    if draw(st.booleans()):
        doc["inStock"] = draw(st.booleans())
    # at most six other top-level fields: with the small kept ones they always fit once the large
    # ones are pointers (six pointers are less than the smallest threshold drawn below)
    for name in draw(st.lists(small_text.filter(lambda k: k not in KEEP), max_size=6, unique=True)):
        doc[name] = part()
    return doc


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=documents(), threshold=st.sampled_from([4096, 16_384, 65_536]), compress=st.booleans())
def test_any_document_fits_keeps_its_routing_fields_and_comes_back_equal(
    s3: Any, doc: Any, threshold: int, compress: bool
) -> None:
    # GIVEN a nested unicode JSON document of 0 to 2 MB
    offload = S3Offload(bucket=BUCKET, threshold_bytes=threshold, keep=KEEP, compress=compress)
    # WHEN it is offloaded as a task's output
    out = offload.offload(Output.of(doc), clients(), "exec-property")
    # THEN what Step Functions carries is at most the threshold, in UTF-8 bytes of compact JSON
    assert out.text == json_text(out.value)
    assert utf8_len(out.text) <= threshold
    # AND kept fields are inline and unchanged
    if isinstance(doc, dict):
        for name in KEEP:
            if name in doc:
                assert out.value[name] == doc[name]
    # AND the next task, given the JSON that travelled, resolves it to an equal document
    assert offload.resolve(json.loads(out.text), clients()) == doc


# -- offloading --------------------------------------------------------------------------------


def test_a_large_field_moves_and_its_object_is_what_the_pointer_says(s3: Any) -> None:
    # GIVEN an order of about 300 KB
    doc = order(4000)
    offload = S3Offload(bucket=BUCKET, keep=["orderId", "inStock"])
    # WHEN offloaded
    out = offload.offload(Output.of(doc), clients(), "exec-1")
    # THEN only "items" became a pointer, under <prefix><shard>/<scope>/<uuid>.json
    assert out.value["orderId"] == "o-42" and out.value["inStock"] is True
    assert out.value["customer"] == doc["customer"]
    [pointer] = pointers_in(out.value)
    assert out.value["items"] == {POINTER_FIELD: pointer}
    assert re.fullmatch(r"sfn-workers/[0-9a-f]{2}/exec-1/[0-9a-f-]{36}\.json", pointer["key"])
    # AND bytes and sha256 describe the stored object; gzip made it much smaller
    stored = s3.get_object(Bucket=BUCKET, Key=pointer["key"])["Body"].read()
    assert len(stored) == pointer["bytes"] and hashlib.sha256(stored).hexdigest() == pointer["sha256"]
    assert pointer["encoding"] == "json+gzip"
    assert json.loads(gzip.decompress(stored)) == doc["items"]
    assert pointer["bytes"] * 5 < len(json_text(doc["items"]).encode())


def test_without_compression_the_object_is_the_json_itself(s3: Any) -> None:
    doc = order(4000)
    out = S3Offload(bucket=BUCKET, compress=False).offload(Output.of(doc), clients(), "exec-2")
    [pointer] = pointers_in(out.value)
    stored = s3.get_object(Bucket=BUCKET, Key=pointer["key"])["Body"].read()
    assert pointer["encoding"] == "json" and stored == json_text(doc["items"]).encode()


def test_a_document_that_is_not_an_object_becomes_one_pointer(s3: Any) -> None:
    doc = [order(10)] * 600
    offload = S3Offload(bucket=BUCKET)
    out = offload.offload(Output.of(doc), clients(), "exec-3")
    assert list(out.value) == [POINTER_FIELD]
    assert offload.resolve(out.value, clients()) == doc


def test_several_large_fields_move_and_resolve_together(s3: Any) -> None:
    doc = {"a": "é" * 40_000, "b": ["ü"] * 30_000, "c": {"d": "x" * 50_000}, "orderId": "o-1"}
    offload = S3Offload(bucket=BUCKET, keep=["orderId"], threshold_bytes=4096)
    out = offload.offload(Output.of(doc), clients(), "exec-4")
    assert len(pointers_in(out.value)) == 3
    assert offload.resolve({"wrapped": [out.value]}, clients()) == {"wrapped": [doc]}


def test_keys_that_are_not_strings_arrive_as_json_makes_them(s3: Any) -> None:
    # GIVEN an output keyed by integers (JSON turns keys into strings)
    doc = {1: "x" * 10_000, 2: "small"}
    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096)
    out = offload.offload(Output.of(doc), clients(), "exec-keys")
    # THEN the large field moved and the next task sees what Step Functions would carry
    assert out.text == json_text(out.value) and utf8_len(out.text) <= 4096
    assert offload.resolve(json.loads(out.text), clients()) == {"1": "x" * 10_000, "2": "small"}


def test_always_sends_everything_but_the_kept_fields_to_s3(s3: Any) -> None:
    doc = {"orderId": "o-1", "card": {"last4": "4242"}, "status": "ok"}
    offload = S3Offload(bucket=BUCKET, keep=["orderId"], always=True)
    out = offload.offload(Output.of(doc), clients(), "exec-5")
    assert out.value["orderId"] == "o-1" and len(pointers_in(out.value)) == 2
    assert "4242" not in out.text
    assert offload.resolve(out.value, clients()) == doc


def test_each_pointer_is_logged_and_counted(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a logger that records what the offloader says at debug level
    lines: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def debug(self, message: str, extra: dict[str, Any]) -> None:
            lines.append((message, extra))

    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096)
    offload._logger = Recorder()
    # WHEN two fields are offloaded
    offload.offload(Output.of({"a": "x" * 9000, "b": "y" * 9000}), clients(), "exec-6")
    # THEN one debug line per pointer, naming field, key and sizes
    assert sorted(extra["field"] for message, extra in lines if message == "payload offloaded") == ["a", "b"]
    assert all(re.match(r"sfn-workers/[0-9a-f]{2}/exec-6/", extra["key"]) for _, extra in lines)
    # AND EMF metrics for the bytes and the pointer count
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_name = {m["Name"]: doc[m["Name"]] for doc in metrics for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert by_name["OffloadedPointers"] == 2
    assert by_name["OffloadedBytes"] > 0


def test_write_items_gives_a_distributed_map_its_bucket_and_key(s3: Any) -> None:
    # GIVEN a large list a Distributed Map will iterate
    items = [{"sku": f"S{i}", "qty": 1} for i in range(20_000)]
    offload = S3Offload(bucket=BUCKET)
    # WHEN written for the ItemReader
    where = offload.write_items(items, clients(), scope="exec-7")
    # THEN it returns what the ItemReader's arguments need, and the object is a plain JSON array
    assert set(where) == {"Bucket", "Key"} and where["Bucket"] == BUCKET
    assert re.match(r"sfn-workers/[0-9a-f]{2}/exec-7/", where["Key"])
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=where["Key"])["Body"].read()) == items


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def stored(s3: Any) -> tuple[S3Offload, dict[str, Any]]:
    """An offloader and the pointer body of one object it wrote (1 MB of zeros, gzip'd to ~1 KB)."""
    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096, max_bytes=2_000_000)
    out = offload.offload(Output.of(["0" * 1_000_000]), clients(), "exec-r")
    return offload, out.value[POINTER_FIELD]


def refusal(offload: S3Offload, body: dict[str, Any]) -> str:
    with pytest.raises(PayloadPointerError) as caught:
        offload.resolve({"order": {"items": {POINTER_FIELD: body}}}, clients())
    return str(caught.value)


def test_the_pointer_as_written_resolves(stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    assert offload.resolve({POINTER_FIELD: body}, clients()) == ["0" * 1_000_000]


def test_a_malformed_pointer_is_refused(stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    assert "malformed pointer" in refusal(offload, {k: v for k, v in body.items() if k != "sha256"})


def test_a_pointer_to_another_bucket_is_refused_even_if_the_object_is_real(
    s3: Any, stored: tuple[S3Offload, dict[str, Any]]
) -> None:
    offload, body = stored
    s3.create_bucket(Bucket="other-bkt")
    s3.copy_object(Bucket="other-bkt", Key=body["key"], CopySource={"Bucket": BUCKET, "Key": body["key"]})
    assert "bucket 'other-bkt' is not allowed" in refusal(offload, {**body, "bucket": "other-bkt"})


def test_a_pointer_outside_the_prefix_is_refused(s3: Any, stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    s3.copy_object(Bucket=BUCKET, Key="private/x.json", CopySource={"Bucket": BUCKET, "Key": body["key"]})
    assert "prefix not allowed" in refusal(offload, {**body, "key": "private/x.json"})


def test_a_key_that_escapes_the_prefix_with_dot_dot_is_refused(
    s3: Any, stored: tuple[S3Offload, dict[str, Any]]
) -> None:
    # GIVEN a real object whose literal key climbs out of the prefix
    offload, body = stored
    key = "sfn-workers/../private/x.json"
    s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": body["key"]})
    # THEN it is refused, by rule, not by chance
    assert "escapes the prefix" in refusal(offload, {**body, "key": key})


def test_a_missing_object_is_refused(s3: Any, stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    s3.delete_object(Bucket=BUCKET, Key=body["key"])
    assert "missing object" in refusal(offload, body)


def test_an_object_over_max_bytes_is_refused_stored_or_decoded(stored: tuple[S3Offload, dict[str, Any]]) -> None:
    _, body = stored
    # stored size: refused before reading
    small = S3Offload(bucket=BUCKET, max_bytes=body["bytes"] - 1)
    assert f"over max_bytes={body['bytes'] - 1}" in refusal(small, body)
    # decoded size: 1 MB of zeros in ~1 KB of gzip does not get past a 100 KB limit
    assert "decoded size is over max_bytes=100000" in refusal(S3Offload(bucket=BUCKET, max_bytes=100_000), body)


def test_an_object_of_another_size_is_refused(s3: Any, stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    s3.put_object(Bucket=BUCKET, Key=body["key"], Body=b'["changed"]')
    assert "size mismatch" in refusal(offload, body)


def test_an_object_with_other_bytes_is_refused(s3: Any, stored: tuple[S3Offload, dict[str, Any]]) -> None:
    offload, body = stored
    original = s3.get_object(Bucket=BUCKET, Key=body["key"])["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=body["key"], Body=bytes(b ^ 1 for b in original))  # same length
    assert "sha256 mismatch" in refusal(offload, body)


def test_a_refused_pointer_fails_the_task_with_its_error_name(
    s3: Any, stored: tuple[S3Offload, dict[str, Any]]
) -> None:
    # GIVEN a direct-mode handler and an input pointing outside the bucket
    _, body = stored

    @task(offload=S3Offload(bucket=BUCKET), clients=clients())
    def handler(payload: Any) -> Any:
        raise AssertionError("must not run")

    # THEN the Lambda fails with errorType PayloadPointerError, before the function runs
    with pytest.raises(PayloadPointerError, match="not allowed"):
        handler({"items": {POINTER_FIELD: {**body, "bucket": "other-bkt"}}}, None)


# -- S3 failing --------------------------------------------------------------------------------


def test_a_bucket_that_does_not_exist_is_an_offload_error(s3: Any) -> None:
    offload = S3Offload(bucket="no-such-bkt", threshold_bytes=4096, retry_policy=no_sleep_policy())
    with pytest.raises(OffloadError, match=r"could not write s3://no-such-bkt/sfn-workers/../exec-8/.*NoSuchBucket"):
        offload.offload(Output.of({"a": "x" * 10_000}), clients(), "exec-8")


def closed_port_clients() -> Clients:
    import boto3
    from botocore.config import Config

    from tests.conftest import free_port

    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)
    return Clients({"s3": boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", config=config)})


def test_s3_down_while_offloading_is_an_offload_error_and_the_task_fails_with_it(s3: Any) -> None:
    # GIVEN S3 unreachable (nothing listens on the port) and a handler whose output must move
    offload = S3Offload(bucket=BUCKET, threshold_bytes=4096, retry_policy=no_sleep_policy())

    @task(offload=offload, clients=closed_port_clients())
    def handler(payload: Any) -> dict[str, str]:
        return {"blob": "x" * 10_000}

    # THEN the task fails with OffloadError, saying what could not be written and why
    with pytest.raises(OffloadError, match=r"could not write s3://payloads-bkt/.*EndpointConnectionError") as caught:
        handler({}, None)
    assert caught.value.__cause__ is not None  # the botocore error is kept as the cause


def test_s3_down_while_resolving_is_an_offload_error(stored: tuple[S3Offload, dict[str, Any]]) -> None:
    _, body = stored
    offload = S3Offload(bucket=BUCKET, retry_policy=no_sleep_policy())
    with pytest.raises(OffloadError, match="could not read s3://payloads-bkt/"):
        offload.resolve({POINTER_FIELD: body}, closed_port_clients())


# -- the chain ---------------------------------------------------------------------------------


class Item(BaseModel):
    sku: str
    name: str
    qty: int
    price: float


class Order(BaseModel):
    orderId: str
    inStock: bool
    items: list[Item]


class Shipped(BaseModel):
    orderId: str
    count: int
    total: float


def test_a_handler_returns_1_mb_and_the_next_one_receives_all_of_it(s3: Any) -> None:
    # GIVEN two tasks of a workflow sharing the payload bucket
    offload = S3Offload(bucket=BUCKET, keep=["orderId", "inStock"])

    @task(offload=offload, clients=clients())
    def load_order(request: dict[str, str]) -> Order:
        return Order.model_validate(order(16_500) | {"orderId": request["orderId"]})

    @task(offload=offload, clients=clients())
    def ship(placed: Order) -> Shipped:
        return Shipped(
            orderId=placed.orderId, count=len(placed.items), total=sum(i.qty * i.price for i in placed.items)
        )

    # WHEN the first returns about 1 MB and Step Functions passes its JSON to the second
    result = load_order({"orderId": "o-1mb"}, None)
    travelled = json.dumps(result)
    expected = order(16_500)
    assert len(json_text(expected).encode()) > 1_000_000
    assert len(travelled.encode()) <= 65_536 and json.loads(travelled)["inStock"] is True
    shipped = ship(json.loads(travelled), None)
    # THEN the second saw every item, validated from the resolved value
    assert shipped == {
        "orderId": "o-1mb",
        "count": 16_500,
        "total": pytest.approx(sum(i["qty"] * i["price"] for i in expected["items"])),
    }
