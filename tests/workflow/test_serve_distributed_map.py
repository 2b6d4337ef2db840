"""Distributed Map on the local runner against the embedded S3 (moto server over real HTTP).

GIVEN objects in the emulator's S3 WHEN a Distributed Map reads, batches and writes them THEN the
children get the items AWS would give them, and the result files are the ones AWS writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

BUCKET = "dmap-data"


def _machine(map_state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "Each", "States": {"Each": {**map_state, "End": True}}}


def _processor(states: dict[str, Any] | None = None) -> dict[str, Any]:
    states = states or {"Echo": {"Type": "Pass", "End": True}}
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": next(iter(states)),
        "States": states,
    }


@pytest.fixture
def s3_runner() -> Iterator[Any]:
    """A LocalRunner whose emulator has the data bucket; ``runner.run_definition(defn, input)``."""
    from sfn_workers.local import LocalRunner

    runner = LocalRunner({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with runner:
        s3 = runner.emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        yield runner


def _run(runner: Any, definition: dict[str, Any], value: Any = None) -> Any:
    from sfn_workers.local import asl

    clock = asl.VirtualClock()
    execution = asl.Execution(
        asl.parse_definition(definition),
        {} if value is None else value,
        integrations=runner.integrations(clock),
        clock=clock,
        tokens=runner.tokens,
        name="dmap",
    )
    return execution.run()


def _put(runner: Any, key: str, body: str) -> None:
    runner.emulator.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def _get_json(runner: Any, key: str) -> Any:
    return json.loads(runner.emulator.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_csv_with_headers_is_read_and_batched(s3_runner: Any) -> None:
    # GIVEN a CSV object with a header row
    _put(s3_runner, "in/ratings.csv", "user,movie,rating\nu1,m1,5\nu2,m2,3\nu3,m3,4\n")
    definition = _machine(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket": BUCKET, "Key.$": "$.key"},
            },
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
            "ItemProcessor": _processor(),
        }
    )
    # WHEN the map runs
    result = _run(s3_runner, definition, {"key": "in/ratings.csv", "run": "r1"})
    # THEN each child received a batch of rows as objects of strings, with the BatchInput
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [
        {
            "Items": [{"user": "u1", "movie": "m1", "rating": "5"}, {"user": "u2", "movie": "m2", "rating": "3"}],
            "BatchInput": {"run": "r1"},
        },
        {"Items": [{"user": "u3", "movie": "m3", "rating": "4"}], "BatchInput": {"run": "r1"}},
    ]
    types = [e["type"] for e in result.history]
    assert "MapRunStarted" in types and "MapRunSucceeded" in types


def test_csv_with_given_headers_and_max_items(s3_runner: Any) -> None:
    _put(s3_runner, "in/raw.csv", "a|1\nb|2\nc|3\n")
    definition = _machine(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {
                    "InputType": "CSV",
                    "CSVHeaderLocation": "GIVEN",
                    "CSVHeaders": ["letter", "number"],
                    "CSVDelimiter": "PIPE",
                    "MaxItems": 2,
                },
                "Parameters": {"Bucket": BUCKET, "Key": "in/raw.csv"},
            },
            "ItemSelector": {"row.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "ItemProcessor": _processor(),
        }
    )
    result = _run(s3_runner, definition)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [
        {"row": {"letter": "a", "number": "1"}, "index": 0},
        {"row": {"letter": "b", "number": "2"}, "index": 1},
    ]


def test_json_array_and_json_lines(s3_runner: Any) -> None:
    _put(s3_runner, "in/items.json", json.dumps([{"n": 1}, {"n": 2}]))
    _put(s3_runner, "in/items.jsonl", '{"n": 3}\n{"n": 4}\n\n')
    double = {"Double": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, $.n)"}, "End": True}}
    for key, kind, expected in (("in/items.json", "JSON", [2, 4]), ("in/items.jsonl", "JSONL", [6, 8])):
        definition = _machine(
            {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": kind},
                    "Parameters": {"Bucket": BUCKET, "Key": key},
                },
                "ItemProcessor": _processor(double),
            }
        )
        result = _run(s3_runner, definition)
        assert result.status == "SUCCEEDED", result.cause
        assert [item["n"] for item in result.output] == expected


def test_list_objects_v2_gives_one_item_per_object(s3_runner: Any) -> None:
    for i in range(3):
        _put(s3_runner, f"logs/part-{i}.txt", "x" * (i + 1))
    _put(s3_runner, "other/skip.txt", "nope")
    definition = _machine(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:listObjectsV2",
                "Parameters": {"Bucket": BUCKET, "Prefix": "logs/"},
            },
            "ItemSelector": {"key.$": "$$.Map.Item.Value.Key", "size.$": "$$.Map.Item.Value.Size"},
            "ItemProcessor": _processor(),
        }
    )
    result = _run(s3_runner, definition)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"key": f"logs/part-{i}.txt", "size": i + 1} for i in range(3)]


def test_result_writer_writes_the_manifest_and_result_files(s3_runner: Any) -> None:
    # GIVEN items of which one fails, and a tolerated failure count of 1
    _put(s3_runner, "in/orders.json", json.dumps([{"ok": True}, {"ok": False}, {"ok": True}]))
    check = {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Fine"}],
            "Default": "Broken",
        },
        "Fine": {"Type": "Pass", "Result": "shipped", "End": True},
        "Broken": {"Type": "Fail", "Error": "ItemBroken", "Cause": "bad item"},
    }
    definition = _machine(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": BUCKET, "Key": "in/orders.json"},
            },
            "ToleratedFailureCount": 1,
            "ItemProcessor": _processor(check),
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Prefix": "results"},
            },
        }
    )
    # WHEN the map runs
    result = _run(s3_runner, definition)
    # THEN the state's result points at the manifest
    assert result.status == "SUCCEEDED", result.cause
    details = result.output["ResultWriterDetails"]
    map_run_arn = result.output["MapRunArn"]
    assert ":mapRun:StateMachine/Each:" in map_run_arn
    run_id = map_run_arn.rsplit(":", 1)[-1]
    assert details == {"Bucket": BUCKET, "Key": f"results/{run_id}/manifest.json"}
    # AND the manifest lists the SUCCEEDED and FAILED files, which hold the children
    manifest = _get_json(s3_runner, details["Key"])
    assert manifest["DestinationBucket"] == BUCKET and manifest["MapRunArn"] == map_run_arn
    assert manifest["ResultFiles"]["PENDING"] == []
    succeeded = _get_json(s3_runner, manifest["ResultFiles"]["SUCCEEDED"][0]["Key"])
    failed = _get_json(s3_runner, manifest["ResultFiles"]["FAILED"][0]["Key"])
    assert manifest["ResultFiles"]["SUCCEEDED"][0]["Key"] == f"results/{run_id}/SUCCEEDED_0.json"
    assert [json.loads(r["Output"]) for r in succeeded] == ["shipped", "shipped"]
    assert [json.loads(r["Input"]) for r in succeeded] == [{"ok": True}, {"ok": True}]
    assert all(r["Status"] == "SUCCEEDED" and r["ExecutionArn"].startswith("arn:aws:states:") for r in succeeded)
    assert [(r["Status"], r["Error"], r["Cause"], json.loads(r["Input"])) for r in failed] == [
        ("FAILED", "ItemBroken", "bad item", {"ok": False})
    ]


def test_exceeding_the_tolerated_failures_fails_the_state_and_writes_pending(s3_runner: Any) -> None:
    _put(s3_runner, "in/bad.json", json.dumps([{"i": i} for i in range(6)]))
    definition = _machine(
        {
            "Type": "Map",
            "MaxConcurrency": 1,
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": BUCKET, "Key": "in/bad.json"},
            },
            "ToleratedFailurePercentage": 20,
            "ItemProcessor": _processor({"Boom": {"Type": "Fail", "Error": "Nope"}}),
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": BUCKET, "Prefix": "failed-run"},
            },
        }
    )
    result = _run(s3_runner, definition)
    assert (result.status, result.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    keys = [
        o["Key"]
        for o in s3_runner.emulator.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="failed-run/")["Contents"]
    ]
    manifest = _get_json(s3_runner, next(k for k in keys if k.endswith("manifest.json")))
    failed = _get_json(s3_runner, manifest["ResultFiles"]["FAILED"][0]["Key"])
    pending = _get_json(s3_runner, manifest["ResultFiles"]["PENDING"][0]["Key"])
    # 20 % of 6 tolerates one failure: the second one stops the run (one child at a time)
    assert len(failed) == 2 and len(pending) == 4
    assert "MapRunFailed" in [e["type"] for e in result.history]


def test_a_missing_object_fails_the_map_with_the_s3_error(s3_runner: Any) -> None:
    definition = _machine(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": BUCKET, "Key": "in/absent.json"},
            },
            "ItemProcessor": _processor(),
        }
    )
    result = _run(s3_runner, definition)
    assert result.status == "FAILED"
    assert result.error == "S3.NoSuchKeyException"


def test_jsonata_item_reader_arguments_and_item_selector(s3_runner: Any) -> None:
    _put(s3_runner, "in/j.json", json.dumps([{"n": 1}, {"n": 2}, {"n": 3}]))
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON", "MaxItems": 2},
                    "Arguments": {"Bucket": BUCKET, "Key": "{% $states.input.key %}"},
                },
                "ItemSelector": {"n": "{% $states.context.Map.Item.Value.n * 10 %}"},
                "ItemProcessor": _processor(),
                "End": True,
            }
        },
    }
    result = _run(s3_runner, definition, {"key": "in/j.json"})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"n": 10}, {"n": 20}]


class _NoIntegrations:
    def invoke_lambda(self, call: Any) -> Any:
        raise AssertionError("unused")

    def call_service(self, resource: str, parameters: Any, context: Any) -> Any:
        raise AssertionError("unused")


def test_stopping_the_parent_stops_its_children_and_virtual_time_is_shared() -> None:
    import threading
    import time

    from sfn_workers.local import asl

    waits = _machine(
        {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ItemProcessor": _processor({"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}),
        }
    )
    definition = asl.parse_definition(waits)

    # GIVEN children that wait in virtual time, two at a time: the map run takes the longest lane
    clock = asl.VirtualClock()
    items = [{"s": 3600}, {"s": 60}, {"s": 7200}, {"s": 10}]
    result = asl.Execution(
        definition, items, integrations=_NoIntegrations(), clock=clock, tokens=asl.TokenBroker()
    ).run()
    assert result.status == "SUCCEEDED" and result.output == items
    assert (result.stop - result.start).total_seconds() == 60 + 7200  # lane 2: 60 s then 7200 s

    # WHEN a real-time execution is stopped while its children wait
    execution = asl.Execution(
        definition, [{"s": 100}] * 3, integrations=_NoIntegrations(), clock=asl.RealClock(), tokens=asl.TokenBroker()
    )
    threading.Timer(0.3, lambda: execution.stop("Operator", "enough")).start()
    started = time.monotonic()
    stopped = execution.run()

    # THEN it ends ABORTED at once, its children with it
    assert time.monotonic() - started < 5
    assert (stopped.status, stopped.error) == ("ABORTED", "Operator")
