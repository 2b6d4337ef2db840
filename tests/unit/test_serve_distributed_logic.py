"""Distributed Map's pure parts: reading S3 object text into items, batching, the result files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfn_workers.local.asl import StatesError
from sfn_workers.local.asl.distributed import ChildOutcome, batch_items, is_distributed, parse_items, result_files


def test_csv_first_row_headers_give_objects_of_strings() -> None:
    text = 'name,qty,note\nbook,2,"a, quoted"\npen,1,\n'
    assert parse_items(text, {"InputType": "CSV"}) == [
        {"name": "book", "qty": "2", "note": "a, quoted"},
        {"name": "pen", "qty": "1", "note": ""},
    ]


def test_csv_given_headers_and_delimiters() -> None:
    config = {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "CSVDelimiter": "TAB"}
    assert parse_items("1\t2\n3\t4\n", config) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    with pytest.raises(StatesError) as caught:
        parse_items("1\t2\t3\n", config)
    assert caught.value.error == "States.ItemReaderFailed"


def test_json_must_be_an_array_and_json_lines_skip_blank_lines() -> None:
    assert parse_items('[1, {"a": 2}]', {"InputType": "JSON"}) == [1, {"a": 2}]
    assert parse_items('{"a": 1}\n\n{"a": 2}\n', {"InputType": "JSONL"}) == [{"a": 1}, {"a": 2}]
    for text, kind in (('{"a": 1}', "JSON"), ("[1,", "JSON"), ("{nope}\n", "JSONL")):
        with pytest.raises(StatesError) as caught:
            parse_items(text, {"InputType": kind})
        assert caught.value.error == "States.ItemReaderFailed"


def test_batches_by_count_with_batch_input() -> None:
    assert batch_items([1, 2, 3], max_items=2, max_bytes=None, batch_input={"run": 1}) == [
        {"Items": [1, 2], "BatchInput": {"run": 1}},
        {"Items": [3], "BatchInput": {"run": 1}},
    ]


def test_batches_by_bytes_counting_the_whole_batch_json() -> None:
    items = ["x" * 10] * 5  # each "xxxxxxxxxx" is 12 bytes of JSON
    batches = batch_items(items, max_items=None, max_bytes=40, batch_input=None)
    for batch in batches:
        assert len(json.dumps(batch, separators=(",", ":")).encode()) <= 40
    assert [len(b["Items"]) for b in batches] == [2, 2, 1]


def test_an_item_larger_than_the_batch_limit_fails() -> None:
    with pytest.raises(StatesError):
        batch_items(["x" * 100], max_items=None, max_bytes=50)


@given(
    items=st.lists(
        st.one_of(st.integers(), st.text(max_size=30), st.dictionaries(st.text(max_size=5), st.booleans(), max_size=4)),
        max_size=60,
    ),
    max_items=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
    max_bytes=st.integers(min_value=200, max_value=2_000),
)
def test_batching_keeps_every_item_once_in_order_within_the_limits(
    items: list[object], max_items: int | None, max_bytes: int
) -> None:
    batches = batch_items(items, max_items=max_items, max_bytes=max_bytes)
    assert [item for batch in batches for item in batch["Items"]] == items
    for batch in batches:
        assert batch["Items"]
        assert max_items is None or len(batch["Items"]) <= max_items
        assert len(json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode()) <= max_bytes


def test_result_files_follow_aws_layout() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outcomes = [
        ChildOutcome("c-0", "arn:x:0", {"i": 0}, "SUCCEEDED", output={"ok": 1}, start=when, stop=when),
        ChildOutcome("c-1", "arn:x:1", {"i": 1}, "FAILED", error="Boom", cause="why", start=when, stop=when),
        ChildOutcome("c-2", "arn:x:2", {"i": 2}, "PENDING"),
    ]
    run_arn = "arn:aws:states:us-east-1:123456789012:mapRun:sm/Each:abc-123"
    manifest_key, files = result_files(
        outcomes, bucket="b", prefix="out/", map_run_arn=run_arn, state_machine_arn="arn:sm"
    )
    assert manifest_key == "out/abc-123/manifest.json"
    manifest = json.loads(files[manifest_key])
    assert manifest["DestinationBucket"] == "b" and manifest["MapRunArn"] == run_arn
    assert {group: [f["Key"] for f in entries] for group, entries in manifest["ResultFiles"].items()} == {
        "SUCCEEDED": ["out/abc-123/SUCCEEDED_0.json"],
        "FAILED": ["out/abc-123/FAILED_0.json"],
        "PENDING": ["out/abc-123/PENDING_0.json"],
    }
    for entries in manifest["ResultFiles"].values():
        assert entries[0]["Size"] == len(files[entries[0]["Key"]].encode())
    (succeeded,) = json.loads(files["out/abc-123/SUCCEEDED_0.json"])
    assert (succeeded["Status"], json.loads(succeeded["Output"]), json.loads(succeeded["Input"])) == (
        "SUCCEEDED",
        {"ok": 1},
        {"i": 0},
    )
    assert succeeded["StartDate"] == "2026-01-02T03:04:05.000Z"
    (failed,) = json.loads(files["out/abc-123/FAILED_0.json"])
    assert (failed["Error"], failed["Cause"], "Output" in failed) == ("Boom", "why", False)


def test_which_map_states_are_distributed() -> None:
    assert is_distributed({"ItemReader": {}})
    assert is_distributed({"ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}}})
    assert not is_distributed({"ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}}, "ItemsPath": "$.x"})
