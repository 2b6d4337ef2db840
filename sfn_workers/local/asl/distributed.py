"""Distributed Map: items read from S3, batched, run as child executions, results written to S3.

A Map state with an ``ItemReader``, an ``ItemBatcher`` or a ``ResultWriter`` (or
``ProcessorConfig.Mode: DISTRIBUTED``) runs here, through one call from the interpreter's Map state
(:func:`run_distributed_map`). As on AWS, each item (or batch) is a *child execution* of the item
processor with its own name, status, input/output and history; the parent's history records
``MapRunStarted`` and ``MapRunSucceeded``/``MapRunFailed``.

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
runner's embedded emulator (or any endpoint it is pointed at) serves it. The pure parts (parsing,
batching, result files) are plain functions, tested without an execution.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import StatesError
from .integrations import TaskError

if TYPE_CHECKING:
    from .interpreter import Execution

__all__ = [
    "ChildOutcome",
    "batch_items",
    "is_distributed",
    "parse_items",
    "result_files",
    "run_distributed_map",
]

MAX_BATCH_BYTES = 262_144
_DISTRIBUTED_CONCURRENCY = 1000  # AWS's default MaxConcurrency of a Distributed Map
_LOCAL_THREADS = 40  # children running at once locally (MaxConcurrency lower than this is honoured)
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


# -- the run ---------------------------------------------------------------------------------------


def _s3(execution: Execution, action: str, parameters: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """An S3 call through the runner's integrations; its failure is the state's error (S3.NoSuchKeyException...)."""
    try:
        return execution.integrations.call_service(f"arn:aws:states:::aws-sdk:s3:{action}", dict(parameters), context)
    except TaskError as exc:
        raise StatesError(exc.error, exc.cause) from None


def _last_modified_ms(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return value
    return value


def _read(execution: Execution, reader: Mapping[str, Any], params: Any, context: Mapping[str, Any]) -> list[Any]:
    resource = str(reader.get("Resource", ""))
    if not isinstance(params, Mapping):
        raise StatesError("States.Runtime", "The ItemReader's Parameters must be an object")
    config = reader.get("ReaderConfig") or {}
    if resource.endswith(":s3:listObjectsV2"):
        items: list[Any] = []
        request = dict(params)
        while True:
            page = _s3(execution, "listObjectsV2", request, context)
            for obj in page.get("Contents") or []:
                items.append(
                    {
                        "Etag": obj.get("ETag"),
                        "Key": obj.get("Key"),
                        "LastModified": _last_modified_ms(obj.get("LastModified")),
                        "Size": obj.get("Size"),
                        "StorageClass": obj.get("StorageClass", "STANDARD"),
                    }
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return items
            request["ContinuationToken"] = token
    if resource.endswith(":s3:getObject"):
        answer = _s3(execution, "getObject", params, context)
        body = answer.get("Body", "")
        return parse_items(body if isinstance(body, str) else json.dumps(body), config)
    raise StatesError("States.Runtime", f"The local runner does not support the ItemReader resource {resource!r}")


def run_distributed_map(execution: Execution, run: Any, raw: Any) -> Any:
    """One attempt of a Distributed Map state: the interpreter's Map state hands over here."""
    from .interpreter import _StateRun

    spec = run.spec
    body: Mapping[str, Any] = spec.raw
    assert spec.processor is not None
    jsonata = spec.jsonata
    doc = raw if jsonata or "InputPath" not in body else execution._path(run, "InputPath", raw)
    context = execution._context(run)

    def evaluate(field_name: str, value: Any) -> Any:
        if jsonata:
            return execution._eval_jsonata(spec, field_name, value, execution._jsonata_bindings(run, raw))
        return execution._template(run, field_name, value, doc)

    # -- items
    reader = body.get("ItemReader")
    if isinstance(reader, Mapping):
        args_field = "Arguments" if jsonata else "Parameters"
        params = evaluate(f"ItemReader.{args_field}", reader.get(args_field, {}))
        items = _read(execution, reader, params, context)
        config = reader.get("ReaderConfig") or {}
        max_items = config.get("MaxItems")
        if "MaxItemsPath" in config and not jsonata:
            max_items = execution._resolver(run, doc)(_compile_path(config["MaxItemsPath"]))
        elif jsonata and isinstance(max_items, str):
            max_items = evaluate("ItemReader.ReaderConfig.MaxItems", max_items)
        if max_items is not None:
            if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
                raise StatesError("States.Runtime", f"MaxItems must be a non-negative integer, not {max_items!r}")
            if max_items:
                items = items[:max_items]
    elif jsonata:
        items = evaluate("Items", body["Items"]) if "Items" in body else raw
    else:
        items = execution._resolver(run, doc)(_compile_path(body.get("ItemsPath", "$")))
    if not isinstance(items, list):
        raise StatesError("States.Runtime", "The Map state's items must be an array")

    # -- ItemSelector per item, then batches
    selector_field = "ItemSelector" if "ItemSelector" in body else "Parameters" if "Parameters" in body else None
    if selector_field is not None:
        selected = []
        for index, value in enumerate(items):
            item_run = _StateRun(spec, run.scope, run.entered, run.entered_id, run.prev, map_item=(index, value))
            if jsonata:
                bindings = execution._jsonata_bindings(item_run, raw)
                selected.append(execution._eval_jsonata(spec, selector_field, body[selector_field], bindings))
            else:
                selected.append(execution._template(item_run, selector_field, body[selector_field], doc))
        items = selected
    batcher = body.get("ItemBatcher")
    inputs: list[Any] = items
    if isinstance(batcher, Mapping):
        per_batch = _number(execution, run, doc, batcher, "MaxItemsPerBatch", evaluate)
        per_bytes = _number(execution, run, doc, batcher, "MaxInputBytesPerBatch", evaluate)
        batch_input = None
        if "BatchInput" in batcher:
            batch_input = evaluate("ItemBatcher.BatchInput", batcher["BatchInput"])
        inputs = batch_items(items, max_items=per_batch, max_bytes=per_bytes, batch_input=batch_input)

    # -- children
    max_c = execution._map_int(run, raw, "MaxConcurrency", 0) or _DISTRIBUTED_CONCURRENCY
    tol_count = execution._map_int(run, raw, "ToleratedFailureCount", None)
    tol_pct = execution._map_int(run, raw, "ToleratedFailurePercentage", None)
    region_account = execution.state_machine_arn.split(":stateMachine:")[0]
    machine_name = execution.state_machine_name
    run_id = str(uuid.uuid4())
    map_run_arn = f"{region_account}:mapRun:{machine_name}/{spec.name}:{run_id}"
    child_machine_arn = f"{region_account}:stateMachine:{machine_name}/{spec.name}"
    run.prev = execution.history.add("MapRunStarted", run.prev, {"mapRunArn": map_run_arn})
    outcomes = _run_children(
        execution, spec, inputs, max_c, (tol_count, tol_pct), map_run_arn, child_machine_arn, run.scope
    )
    failed = sum(1 for o in outcomes if o.status not in ("SUCCEEDED", "PENDING"))
    exceeded = not _tolerated(failed, len(outcomes), tol_count, tol_pct)

    # -- results
    writer = body.get("ResultWriter")
    result: Any
    if isinstance(writer, Mapping):
        args_field = "Arguments" if jsonata else "Parameters"
        params = evaluate(f"ResultWriter.{args_field}", writer.get(args_field, {}))
        if not isinstance(params, Mapping) or not params.get("Bucket"):
            raise StatesError("States.ResultWriterFailed", "The ResultWriter needs a Bucket")
        bucket, prefix = str(params["Bucket"]), str(params.get("Prefix", ""))
        manifest, files = result_files(
            outcomes, bucket=bucket, prefix=prefix, map_run_arn=map_run_arn, state_machine_arn=child_machine_arn
        )
        try:
            for key, text in files.items():
                _s3(execution, "putObject", {"Bucket": bucket, "Key": key, "Body": text}, context)
        except StatesError as exc:
            raise StatesError("States.ResultWriterFailed", f"{exc.error}: {exc.cause}") from None
        result = {"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": manifest}}
    else:
        result = [
            o.output if o.status == "SUCCEEDED" else {"Error": o.error, "Cause": o.cause}
            for o in outcomes
            if o.status != "PENDING"
        ]
    if exceeded:
        cause = f"The specified tolerated failure threshold was exceeded: {failed} of {len(outcomes)} items failed"
        execution.history.add(
            "MapRunFailed", run.prev, {"error": "States.ExceedToleratedFailureThreshold", "cause": cause}
        )
        raise StatesError("States.ExceedToleratedFailureThreshold", cause)
    run.prev = execution.history.add("MapRunSucceeded", run.prev)
    return result


def _compile_path(text: Any) -> Any:
    from .paths import compile_path

    if not isinstance(text, str):
        raise StatesError("States.Runtime", f"Not a path: {text!r}")
    return compile_path(text)


def _number(
    execution: Execution,
    run: Any,
    doc: Any,
    config: Mapping[str, Any],
    name: str,
    evaluate: Callable[[str, Any], Any],
) -> int | None:
    if name in config:
        value = config[name]
        if isinstance(value, str):
            value = evaluate(f"ItemBatcher.{name}", value)
    elif name + "Path" in config:
        value = execution._resolver(run, doc)(_compile_path(config[name + "Path"]))
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StatesError("States.Runtime", f"{name} must be a positive integer, not {value!r}")
    return value


def _tolerated(failed: int, total: int, count: Any, pct: Any) -> bool:
    if failed == 0:
        return True
    if count is None and pct is None:
        return False
    if count is not None and failed <= count:
        return True
    return bool(pct is not None and total and failed * 100.0 / total <= pct)


def _run_children(
    execution: Execution,
    spec: Any,
    inputs: Sequence[Any],
    max_concurrency: int,
    tolerance: tuple[Any, Any],
    map_run_arn: str,
    child_machine_arn: str,
    scope: Any,
) -> list[ChildOutcome]:
    """Run one child execution per input on at most ``max_concurrency`` threads (40 locally)."""
    from .definition import Definition
    from .interpreter import Execution as ExecutionClass

    processor = spec.processor
    definition = Definition(
        raw=spec.raw.get("ItemProcessor") or spec.raw.get("Iterator") or {},
        machine=processor,
        timeout_seconds=None,
        query_language=processor.query_language,
    )
    run_id = map_run_arn.rsplit(":", 1)[-1]
    base = child_machine_arn.replace(":stateMachine:", ":execution:")
    outcomes = [
        ChildOutcome(name=f"{run_id[:8]}-{i}", execution_arn=f"{base}:{run_id[:8]}-{i}", input=value, status="PENDING")
        for i, value in enumerate(inputs)
    ]
    lock = threading.Lock()
    next_index = [0]
    failed = [0]
    stopped = [False]
    clock = execution.clock
    children: dict[int, Any] = {}
    total = len(inputs)
    count, pct = tolerance

    def worker() -> None:
        while True:
            with lock:
                k = next_index[0]
                if k >= total or stopped[0] or scope.is_cancelled():
                    return
                next_index[0] = k + 1
                outcome = outcomes[k]
                child = ExecutionClass(
                    definition,
                    outcome.input,
                    integrations=execution.integrations,
                    clock=clock,
                    tokens=execution.tokens,
                    name=outcome.name,
                    state_machine_name=f"{execution.state_machine_name}/{spec.name}",
                    state_machine_arn=child_machine_arn,
                )
                children[k] = child
            idle = getattr(clock, "idle", None)
            if idle is not None:
                with idle():  # the child registers itself with the clock
                    result = child.run()
            else:
                result = child.run()
            with lock:
                children.pop(k, None)
                outcome.status, outcome.output = result.status, result.output
                outcome.error, outcome.cause = result.error, result.cause
                outcome.start, outcome.stop = result.start, result.stop
                if result.status != "SUCCEEDED":
                    failed[0] += 1
                    if not _tolerated(failed[0], total, count, pct):
                        stopped[0] = True

    threads = []
    hold = getattr(clock, "hold", None)
    for i in range(max(1, min(max_concurrency, _LOCAL_THREADS, total))):
        registration = hold() if hold is not None else None

        def target(registration: Any = registration) -> None:
            if registration is None:
                worker()
            else:
                with registration():
                    worker()

        thread = threading.Thread(target=target, name=f"{spec.name}-child-{i}", daemon=True)
        threads.append(thread)
        thread.start()
    idle = getattr(clock, "idle", None)
    waiter = idle() if idle is not None else None
    if waiter is not None:
        waiter.__enter__()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.05)
                if scope.is_cancelled():  # the parent was stopped: stop the children too
                    with lock:
                        stopped[0] = True
                        running = list(children.values())
                    for child in running:
                        child.stop("States.Aborted", "the parent execution stopped")
    finally:
        if waiter is not None:
            waiter.__exit__(None, None, None)
    if scope.is_cancelled():
        execution._check(scope)
    return outcomes
