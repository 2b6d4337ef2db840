"""Pure logic of offloading: size accounting, field slicing, which fields move, pointers, settings.

No S3 here: these are the decisions made before any call (tests/functional/test_offload_s3.py
proves the calls).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfn_workers._aws import Clients
from sfn_workers.errors import ConfigurationError, OffloadError, PayloadPointerError
from sfn_workers.models import Output, json_text
from sfn_workers.offload import (
    INLINE,
    POINTER_FIELD,
    Plan,
    Pointer,
    S3Offload,
    field_texts,
    plan_offload,
    utf8_len,
)
from sfn_workers.testing import task_context

SHA = "a" * 64
POINTER_BYTES = 300

# JSON values as Step Functions carries them: no lone surrogates (not encodable as UTF-8).
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(texts, kids, max_size=5))


@pytest.fixture(autouse=True)
def _no_settings_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SFN_WORKERS_BUCKET", "SFN_WORKERS_PREFIX", "SFN_WORKERS_THRESHOLD_BYTES"):
        monkeypatch.delenv(name, raising=False)


# -- size accounting ---------------------------------------------------------------------------


def test_size_is_counted_in_utf8_bytes_of_the_json_text() -> None:
    # GIVEN text with 1-, 2-, 3- and 4-byte characters
    text = json_text({"k": "aé€😀"})
    # THEN its size is what Step Functions counts: UTF-8 bytes, not characters
    assert utf8_len(text) == len(text.encode("utf-8")) == len(text) + 1 + 2 + 3
    assert utf8_len('{"ascii":1}') == 11


@settings(max_examples=80)
@given(st.dictionaries(texts, json_values, max_size=6))
def test_field_texts_are_exactly_each_field_serialised(doc: dict[str, Any]) -> None:
    # GIVEN an object and its compact JSON text, made once
    text = json_text(doc)
    # WHEN its top-level field texts are cut out of that text
    pieces = field_texts(doc, text)
    # THEN each piece is that field's own serialisation, and they rebuild the text
    assert pieces == [json_text(v) for v in doc.values()]
    rebuilt = "{" + ",".join(f"{json_text(k)}:{p}" for k, p in zip(doc, pieces, strict=True)) + "}"
    assert rebuilt == text


def test_the_largest_field_is_sliced_not_serialised_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a document whose size is one big list
    doc = {"orderId": "o-1", "items": [{"sku": f"S{i}", "qty": i} for i in range(2000)], "note": "é"}
    text = json_text(doc)
    calls: list[Any] = []
    import sfn_workers.offload.planning as offload

    real = json_text  # the serialiser planning imports (from sfn_workers.models)

    def counting(value: Any) -> str:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(offload, "json_text", counting)
    # WHEN the fields are cut out
    pieces = field_texts(doc, text)
    # THEN the list was never handed to the serialiser: only small values and keys were
    assert pieces is not None and pieces[1] == real(doc["items"])
    assert all(value is not doc["items"] for value in calls)


def test_field_texts_refuses_keys_that_are_not_strings_and_texts_that_do_not_match() -> None:
    assert field_texts({1: "a"}, json_text({1: "a"})) is None  # type: ignore[dict-item]
    assert field_texts({"a": [1, 2]}, '{"a": [1, 2]}') is None  # not compact: slices would not line up
    assert field_texts({}, "{}") == []


# -- which fields move -------------------------------------------------------------------------


def test_a_document_that_fits_stays_inline() -> None:
    assert plan_offload(1000, [("a", 990)], frozenset(), 1000, POINTER_BYTES) == INLINE


def test_the_largest_fields_move_first_and_only_until_it_fits() -> None:
    # GIVEN 30,000 bytes in three big fields and one small one, a 12,000-byte threshold
    fields = [("small", 50), ("b", 9000), ("a", 12000), ("c", 8900)]
    # WHEN planning
    plan = plan_offload(30_000, fields, frozenset(), 12_000, POINTER_BYTES)
    # THEN "a" then "b" move (30,000 - 12,000 - 9,000 + 2 pointers = 9,600), "c" stays
    assert plan == Plan(fields=(2, 1))


def test_kept_fields_never_move_even_when_largest() -> None:
    fields = [("items", 50_000), ("blob", 20_000), ("orderId", 40)]
    plan = plan_offload(70_100, fields, frozenset({"items"}), 65_536, POINTER_BYTES)
    assert plan == Plan(fields=(1,))


def test_fields_smaller_than_a_pointer_do_not_move_and_the_whole_document_goes_instead() -> None:
    # GIVEN 400 fields of 200 bytes: moving any one would make the document larger
    fields = [(f"f{i}", 200) for i in range(400)]
    # WHEN planning without kept fields
    plan = plan_offload(400 * 201 + 1, fields, frozenset(), 65_536, POINTER_BYTES)
    # THEN the whole document becomes one pointer
    assert plan == Plan(whole=True)


def test_kept_fields_over_the_threshold_but_under_the_limit_travel_inline_with_the_rest_moved() -> None:
    # GIVEN a kept field of 70,000 bytes: over the 64 KiB target, far under Step Functions' 256 KiB
    fields = [("orderId", 70_000), ("rest", 10_000)]
    # WHEN planning
    plan = plan_offload(80_020, fields, frozenset({"orderId"}), 65_536, POINTER_BYTES)
    # THEN the other field moves and the document travels, flagged as over the threshold
    assert plan.fields == (1,) and not plan.whole
    assert 65_536 < plan.over_threshold <= 70_020 + POINTER_BYTES


def test_kept_fields_over_the_step_functions_limit_raise_instead_of_hiding_behind_a_pointer() -> None:
    fields = [("orderId", 270_000), ("rest", 10_000)]
    with pytest.raises(OffloadError, match=r"limit of 262144 bytes, because of the fields kept inline \(orderId\)"):
        plan_offload(280_020, fields, frozenset({"orderId"}), 65_536, POINTER_BYTES)


def test_a_document_that_is_not_an_object_goes_whole() -> None:
    assert plan_offload(100_000, [], frozenset({"x"}), 65_536, POINTER_BYTES) == Plan(whole=True)
    assert plan_offload(100, [], frozenset(), 65_536, POINTER_BYTES) == INLINE


def test_always_moves_every_field_but_the_kept_ones_or_the_whole_document() -> None:
    fields = [("orderId", 10), ("status", 4), ("items", 100)]
    assert plan_offload(150, fields, frozenset({"orderId"}), 65_536, POINTER_BYTES, always=True) == Plan(fields=(2, 1))
    assert plan_offload(150, fields, frozenset(), 65_536, POINTER_BYTES, always=True) == Plan(whole=True)


@settings(max_examples=300)
@given(
    sizes=st.lists(st.integers(1, 200_000), max_size=12),
    threshold=st.integers(1_000, 262_144),
    kept=st.sets(st.integers(0, 11), max_size=2),
)
def test_a_plan_always_fits_or_says_why(sizes: list[int], threshold: int, kept: set[int]) -> None:
    # GIVEN any field sizes (the total counts braces, quotes, colons and commas too)
    fields = [(f"f{i}", size) for i, size in enumerate(sizes)]
    total = 2 + sum(len(f'"{name}":') + size + 1 for name, size in fields)
    keep = frozenset(f"f{i}" for i in kept)
    try:
        plan = plan_offload(total, fields, keep, threshold, POINTER_BYTES)
    except OffloadError:
        # THEN an error only when the kept fields themselves are in the way of the 256 KiB limit
        assert any(name in keep for name, _ in fields)
        assert sum(size for name, size in fields if name in keep) > 262_144 - total // 2 or total > 262_144
        return
    # THEN kept fields never move, and the planned size fits the threshold, or (because of kept
    # fields) at least Step Functions' limit, and then the plan says so
    assert all(fields[i][0] not in keep for i in plan.fields)
    if not plan.whole:
        planned = total + sum(POINTER_BYTES - fields[i][1] for i in plan.fields)
        if plan.over_threshold:
            assert any(name in keep for name, _ in fields)
            assert threshold < planned <= plan.over_threshold <= 262_144
        else:
            assert planned <= threshold


# -- pointers ----------------------------------------------------------------------------------


def good_pointer(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "bucket": "b-1", "key": "k/1.json", "bytes": 10, "sha256": SHA, "encoding": "json"}
    body.update(changes)
    return {POINTER_FIELD: body}


def test_a_pointer_reads_back_from_its_json() -> None:
    pointer = Pointer("bkt", "sfn-workers/e/1.json", 12, SHA, "json+gzip")
    assert Pointer.parse(json.loads(json_text(pointer.to_json()))) == pointer


@pytest.mark.parametrize(
    ("node", "says"),
    [
        ({POINTER_FIELD: "s3://b/k"}, "must be an object"),
        ({**good_pointer(), "other": 1}, "must be alone"),
        (good_pointer(v=2), "version 2"),
        (good_pointer(v=True), "version True"),
        (good_pointer(bytes=-1), "non-negative integer"),
        (good_pointer(bytes="10"), "non-negative integer"),
        (good_pointer(sha256="A" * 64), "64 lowercase hex"),
        (good_pointer(encoding="gzip"), "encoding 'gzip'"),
        (good_pointer(key=""), "non-empty strings"),
        ({POINTER_FIELD: {"v": 1, "bucket": "b", "key": "k"}}, "missing fields"),
    ],
)
def test_malformed_pointers_are_refused_saying_so(node: dict[str, Any], says: str) -> None:
    with pytest.raises(PayloadPointerError, match="malformed pointer") as caught:
        Pointer.parse(node)
    assert says in str(caught.value)


def test_pointers_outside_the_rules_are_refused_before_any_s3_call() -> None:
    # GIVEN an offloader for bucket "allowed-bkt" under "sfn-workers/", with no S3 client at all
    clients = Clients()
    offload = S3Offload(bucket="allowed-bkt", max_bytes=1000)

    def refused(**changes: Any) -> str:
        body = {"v": 1, "bucket": "allowed-bkt", "key": "sfn-workers/e/1.json", "bytes": 10, "sha256": SHA}
        body |= {"encoding": "json", **changes}
        with pytest.raises(PayloadPointerError) as caught:
            offload.resolve({"deep": [{"x": {POINTER_FIELD: body}}]}, clients)
        return str(caught.value)

    # THEN each rule names itself
    assert "bucket 'other-bkt' is not allowed" in refused(bucket="other-bkt")
    assert "prefix not allowed" in refused(key="elsewhere/1.json")
    assert "escapes the prefix" in refused(key="sfn-workers/../secrets/1.json")
    assert "escapes the prefix" in refused(key="sfn-workers//1.json")
    assert "over max_bytes=1000" in refused(bytes=1001)
    # AND no client was created to find that out
    assert clients.created() == ()


def test_without_a_bucket_no_pointer_is_allowed() -> None:
    with pytest.raises(PayloadPointerError, match=r"no bucket is configured .SFN_WORKERS_BUCKET is unset"):
        S3Offload().resolve([good_pointer()], Clients())


def test_an_input_without_pointers_comes_back_as_it_is() -> None:
    payload = {"a": [1, {"b": "c"}], "d": None}
    assert S3Offload(bucket="bkt-1").resolve(payload, Clients()) is payload


# -- outputs that need no S3 -------------------------------------------------------------------


def test_a_small_output_costs_no_client_and_no_copy() -> None:
    clients = Clients()
    output = Output.of({"orderId": "o-1", "items": [1, 2, 3]})
    assert S3Offload(bucket="bkt-1").offload(output, clients, "exec") is output
    assert clients.created() == ()


def test_without_a_bucket_a_large_output_names_the_missing_setting() -> None:
    output = Output.of({"blob": "x" * 70_000})
    with pytest.raises(OffloadError, match=r"no bucket is configured .SFN_WORKERS_BUCKET is unset"):
        S3Offload().offload(output, Clients(), "exec")
    with pytest.raises(OffloadError, match="always=True"):
        S3Offload(always=True).offload(Output.of({}), Clients(), "exec")


# -- settings ----------------------------------------------------------------------------------


def test_settings_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFN_WORKERS_BUCKET", " payloads-bkt ")
    monkeypatch.setenv("SFN_WORKERS_PREFIX", "/team/payloads")
    monkeypatch.setenv("SFN_WORKERS_THRESHOLD_BYTES", "4096")
    offload = S3Offload()
    assert (offload.bucket, offload.prefix, offload.threshold_bytes) == ("payloads-bkt", "team/payloads/", 4096)
    # AND an explicit argument wins
    assert S3Offload(bucket="mine-bkt", threshold_bytes=2048).bucket == "mine-bkt"
    assert S3Offload(threshold_bytes=2048).threshold_bytes == 2048


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SFN_WORKERS_BUCKET", "Not_A_Bucket"),
        ("SFN_WORKERS_PREFIX", "a/../b"),
        ("SFN_WORKERS_THRESHOLD_BYTES", "lots"),
        ("SFN_WORKERS_THRESHOLD_BYTES", "-5"),
        ("SFN_WORKERS_THRESHOLD_BYTES", "100"),  # smaller than a pointer
        ("SFN_WORKERS_THRESHOLD_BYTES", "300000"),  # over the Step Functions limit
    ],
)
def test_a_bad_variable_fails_at_decoration_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        S3Offload()


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"S3Offload\(bucket='x'\)"):
        S3Offload(bucket="x")
    with pytest.raises(ConfigurationError, match="threshold_bytes=300000 must be between"):
        S3Offload(threshold_bytes=300_000)
    with pytest.raises(ConfigurationError, match="a pointer's size"):
        S3Offload(threshold_bytes=100)
    with pytest.raises(ConfigurationError, match="max_bytes"):
        S3Offload(max_bytes=0)
    with pytest.raises(ConfigurationError, match="field names must be strings"):
        S3Offload(keep=[1])  # type: ignore[list-item]


def test_keep_given_as_one_string_means_that_field() -> None:
    assert S3Offload(keep="orderId").keep == ("orderId",)


def test_concurrent_s3_calls_still_see_the_running_task() -> None:
    # GIVEN a running task (its context carries the deadline retries respect)
    from sfn_workers.context import _current, current_context
    from sfn_workers.offload._s3io import run_concurrently as _concurrently

    ctx = task_context(execution="exec-9")
    reset = _current.set(ctx)
    try:
        # WHEN several jobs run on worker threads
        seen = _concurrently([current_context for _ in range(4)])
    finally:
        _current.reset(reset)
    # THEN each of them saw it
    assert seen == [ctx] * 4


def test_a_task_without_a_bucket_fails_a_large_output_with_offload_error() -> None:
    # GIVEN a handler with default offloading and no SFN_WORKERS_BUCKET
    from sfn_workers import task

    @task(clients=Clients())
    def handler(payload: dict[str, int]) -> dict[str, str]:
        return {"report": "x" * 70_000}

    # THEN the state sees OffloadError naming the missing variable, not a DataLimitExceeded later
    with pytest.raises(OffloadError, match="SFN_WORKERS_BUCKET is unset"):
        handler({}, None)


def test_pointers_are_found_in_any_mapping_or_list_type_at_any_depth() -> None:
    from collections import OrderedDict

    # GIVEN a pointer (to a bucket that is not allowed) deep inside containers of subclass types
    class Lines(list[Any]):
        pass

    payload = OrderedDict(order={"lines": Lines([1, "a", None, OrderedDict(x=good_pointer(bucket="elsewhere"))])})
    # THEN it is found, and refused
    with pytest.raises(PayloadPointerError, match="'elsewhere' is not allowed"):
        S3Offload(bucket="bkt-1").resolve(payload, Clients())
