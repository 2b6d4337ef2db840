"""Distributed Map: items read from S3, batched, run as child executions, results written to S3.

A Map state with an ``ItemReader``, an ``ItemBatcher`` or a ``ResultWriter`` (or
``ProcessorConfig.Mode: DISTRIBUTED``) is parsed as a ``DistributedMapSpec`` and run by
``states/distributed_map.py``; this module holds its pure parts. As on AWS, each item (or batch)
is a *child execution* of the item processor with its own name, status, input/output and
history; the parent's history records ``MapRunStarted`` and ``MapRunSucceeded``/``MapRunFailed``.

* ItemReader: ``arn:aws:states:::s3:getObject`` with ``ReaderConfig.InputType`` JSON (an array),
  JSONL, or CSV (``CSVHeaderLocation`` FIRST_ROW or GIVEN with ``CSVHeaders``; ``CSVDelimiter``),
  and ``arn:aws:states:::s3:listObjectsV2`` (every object under the prefix, pages followed);
  ``ReaderConfig.MaxItems`` / ``MaxItemsPath`` keep the first N.
* ItemSelector applies to each item (with ``$$.Map.Item.Index/Value``) before batching.
* ItemBatcher: ``MaxItemsPerBatch`` / ``MaxInputBytesPerBatch`` (and the *Path forms) and
  ``BatchInput``; a child receives ``{"Items": [...], "BatchInput": ...}``.
* ToleratedFailureCount/Percentage: beyond them the map run stops starting children (the rest are
  PENDING) and the state fails with ``States.ExceedToleratedFailureThreshold``.
* ResultWriter: ``arn:aws:states:::s3:putObject`` with Bucket and Prefix writes
  ``<Prefix>/<map run id>/manifest.json`` and ``SUCCEEDED_0.json`` / ``FAILED_0.json`` /
  ``PENDING_0.json`` as AWS does; the state's result is then
  ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``.

S3 is reached only through the execution's ``Integrations.call_service`` (``aws-sdk:s3:*``), so the
runner's embedded emulator (or any endpoint it is pointed at) serves it. The pure parts here (parsing,
batching, result files) are plain functions, tested without an execution.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sfn_workers._limits import PAYLOAD_MAX_BYTES

from .errors import StatesError

__all__ = [
    "ChildOutcome",
    "batch_items",
    "is_distributed",
    "parse_items",
    "result_files",
]

MAX_BATCH_BYTES = PAYLOAD_MAX_BYTES
_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}


def is_distributed(body: Mapping[str, Any]) -> bool:
    """Whether a Map state's definition asks for Distributed Map behaviour."""
    processor = body.get("ItemProcessor")
    mode = None
    if isinstance(processor, Mapping) and isinstance(processor.get("ProcessorConfig"), Mapping):
        mode = processor["ProcessorConfig"].get("Mode")
    return mode == "DISTRIBUTED" or any(k in body for k in ("ItemReader", "ItemBatcher", "ResultWriter"))


# -- pure parts ------------------------------------------------------------------------------------


def parse_items(text: str, config: Mapping[str, Any]) -> list[Any]:
    """The items of an S3 object's text for ``ReaderConfig`` (InputType JSON, JSONL or CSV)."""
    kind = str(config.get("InputType", "JSON")).upper()
    if kind == "JSON":
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise StatesError("States.ItemReaderFailed", f"The object is not valid JSON: {exc}") from None
        if not isinstance(value, list):
            raise StatesError("States.ItemReaderFailed", "Attempting to map over non-iterable node.")
        return value
    if kind == "JSONL":
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError:
                    raise StatesError(
                        "States.ItemReaderFailed", f"Line {number} of the JSONL object is not valid JSON"
                    ) from None
        return items
    if kind == "CSV":
        delimiter = _DELIMITERS.get(str(config.get("CSVDelimiter", "COMMA")).upper())
        if delimiter is None:
            raise StatesError("States.ItemReaderFailed", f"Unsupported CSVDelimiter {config.get('CSVDelimiter')!r}")
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        location = str(config.get("CSVHeaderLocation", "FIRST_ROW")).upper()
        if location == "GIVEN":
            headers = config.get("CSVHeaders")
            if not isinstance(headers, list) or not headers:
                raise StatesError("States.ItemReaderFailed", "CSVHeaderLocation GIVEN needs CSVHeaders")
            headers = [str(h) for h in headers]
        else:
            if not rows:
                return []
            headers, rows = rows[0], rows[1:]
        items = []
        for number, row in enumerate(rows, 1):
            if len(row) > len(headers):
                raise StatesError("States.ItemReaderFailed", f"CSV row {number} has more fields than there are headers")
            items.append({h: (row[i] if i < len(row) else "") for i, h in enumerate(headers)})
        return items
    raise StatesError("States.ItemReaderFailed", f"Unsupported InputType {kind!r}")


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def batch_items(
    items: Sequence[Any], *, max_items: int | None, max_bytes: int | None, batch_input: Any = None
) -> list[dict[str, Any]]:
    """Group items as ItemBatcher does: each batch ``{"Items": [...]}`` (plus ``BatchInput``).

    A batch closes when it holds ``max_items`` items or when one more item would make its JSON
    (BatchInput included) larger than ``max_bytes`` (at most 256 KiB). A single item larger than the
    limit fails the map run, as on AWS.
    """
    limit_bytes = min(max_bytes or MAX_BATCH_BYTES, MAX_BATCH_BYTES)
    base = _json_size({"Items": [], **({"BatchInput": batch_input} if batch_input is not None else {})})
    batches: list[dict[str, Any]] = []
    current: list[Any] = []
    size = base
    for item in items:
        item_size = _json_size(item) + (1 if current else 0)
        if base + _json_size(item) > limit_bytes:
            raise StatesError(
                "States.ItemReaderFailed", f"An item is larger than the batch limit of {limit_bytes} bytes"
            )
        if current and ((max_items is not None and len(current) >= max_items) or size + item_size > limit_bytes):
            batches.append(_batch(current, batch_input))
            current, size = [], base
            item_size -= 1
        current.append(item)
        size += item_size
    if current:
        batches.append(_batch(current, batch_input))
    return batches


def _batch(items: list[Any], batch_input: Any) -> dict[str, Any]:
    batch: dict[str, Any] = {"Items": items}
    if batch_input is not None:
        batch["BatchInput"] = batch_input
    return batch


@dataclass(slots=True)
class ChildOutcome:
    """One child execution of a map run, as the ResultWriter files describe it."""

    name: str
    execution_arn: str
    input: Any
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING
    output: Any = None
    error: str | None = None
    cause: str | None = None
    start: datetime | None = None
    stop: datetime | None = None

    def record(self, state_machine_arn: str) -> dict[str, Any]:
        """The entry AWS writes for this child in SUCCEEDED_n.json / FAILED_n.json / PENDING_n.json."""
        entry: dict[str, Any] = {
            "ExecutionArn": self.execution_arn,
            "Input": json.dumps(self.input, separators=(",", ":"), ensure_ascii=False),
            "InputDetails": {"Included": True},
            "Name": self.name,
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE",
            "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven"
            if self.status == "SUCCEEDED"
            else "Map Run is not redrivable locally",
            "StateMachineArn": state_machine_arn,
            "Status": self.status,
        }
        if self.start is not None:
            entry["StartDate"] = _iso(self.start)
        if self.stop is not None:
            entry["StopDate"] = _iso(self.stop)
        if self.status == "SUCCEEDED":
            entry["Output"] = json.dumps(self.output, separators=(",", ":"), ensure_ascii=False)
            entry["OutputDetails"] = {"Included": True}
        if self.error is not None:
            entry["Error"] = self.error
        if self.cause is not None:
            entry["Cause"] = self.cause
        return entry


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_files(
    outcomes: Sequence[ChildOutcome], *, bucket: str, prefix: str, map_run_arn: str, state_machine_arn: str
) -> tuple[str, dict[str, str]]:
    """(manifest key, {key: JSON text}) of what ResultWriter writes: the manifest and one file per status."""
    run_id = map_run_arn.rsplit(":", 1)[-1]
    folder = f"{prefix.rstrip('/')}/{run_id}" if prefix else run_id
    groups: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for outcome in outcomes:
        group = "SUCCEEDED" if outcome.status == "SUCCEEDED" else "PENDING" if outcome.status == "PENDING" else "FAILED"
        groups[group].append(outcome.record(state_machine_arn))
    files: dict[str, str] = {}
    listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for group, records in groups.items():
        if records:
            key = f"{folder}/{group}_0.json"
            text = json.dumps(records, separators=(",", ":"), ensure_ascii=False)
            files[key] = text
            listed[group].append({"Key": key, "Size": len(text.encode("utf-8"))})
    manifest_key = f"{folder}/manifest.json"
    files[manifest_key] = json.dumps(
        {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": listed}, separators=(",", ":")
    )
    return manifest_key, files
