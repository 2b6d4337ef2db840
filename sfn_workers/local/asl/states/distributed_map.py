"""Distributed Map: items read from S3, batched, run as child executions, results written to S3.

What each part does (and the pure functions for parsing, batching and result files) is described
in ``distributed.py``; this module is the state's run. S3 is reached only through the execution's
``Integrations.call_service`` (``aws-sdk:s3:*``). Children are executions made by the run loop
(``Engine.child``), sharing its clock, integrations and tokens.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..distributed import ChildOutcome, batch_items, parse_items, result_files
from ..errors import StatesError
from ..frame import Child, Engine, StateRun
from ..integrations import TaskError
from ..query import Field
from ..specs import DistributedMapSpec
from .fanout import Tolerance, tolerated
from .map import map_number, tolerance

__all__ = ["run_distributed_map"]

_DISTRIBUTED_CONCURRENCY = 1000  # AWS's default MaxConcurrency of a Distributed Map
_LOCAL_THREADS = 40  # children running at once locally (MaxConcurrency lower than this is honoured)


def run_distributed_map(engine: Engine, run: StateRun, spec: DistributedMapSpec, raw: Any) -> tuple[str | None, Any]:
    result = engine.with_retry(run, lambda: _attempt(engine, run, spec, raw))
    return spec.next, spec.query.finish(run, spec.flow, raw, result)


def _s3(engine: Engine, action: str, parameters: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """An S3 call through the runner's integrations; its failure is the state's error (S3.NoSuchKeyException...)."""
    try:
        return engine.integrations.call_service(f"arn:aws:states:::aws-sdk:s3:{action}", dict(parameters), context)
    except TaskError as exc:
        raise StatesError(exc.error, exc.cause) from None


def _last_modified_ms(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return value
    return value


def _list_objects(engine: Engine, params: Mapping[str, Any], context: Mapping[str, Any]) -> list[Any]:
    items: list[Any] = []
    request = dict(params)
    while True:
        page = _s3(engine, "listObjectsV2", request, context)
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


def _read(engine: Engine, reader: Mapping[str, Any], params: Any, context: Mapping[str, Any]) -> list[Any]:
    resource = str(reader.get("Resource", ""))
    if not isinstance(params, Mapping):
        raise StatesError("States.Runtime", "The ItemReader's Parameters must be an object")
    if resource.endswith(":s3:listObjectsV2"):
        return _list_objects(engine, params, context)
    if resource.endswith(":s3:getObject"):
        answer = _s3(engine, "getObject", params, context)
        body = answer.get("Body", "")
        return parse_items(body if isinstance(body, str) else json.dumps(body), reader.get("ReaderConfig") or {})
    raise StatesError("States.Runtime", f"The local runner does not support the ItemReader resource {resource!r}")


def _positive(run: StateRun, spec: DistributedMapSpec, raw: Any, doc: Any, fld: Any, path: Any, name: str) -> Any:
    found = spec.query.read(run, raw, doc, fld, path)
    if found is None:
        return None
    value = found.value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StatesError("States.Runtime", f"{name} must be a positive integer, not {value!r}")
    return value


def _items(engine: Engine, run: StateRun, spec: DistributedMapSpec, raw: Any) -> tuple[list[Any], Any]:
    """(the items, before ItemSelector; the document paths read) from the ItemReader or the input."""
    q = spec.query
    if spec.reader is None or spec.reader_arguments is None:
        items, doc = q.items(run, spec.flow, raw, spec.items, spec.items_path)
        return list(items), doc
    doc = q.input(run, spec.flow, raw)
    params = q.evaluate(run, spec.reader_arguments, raw, doc)
    items = _read(engine, spec.reader, params, run.context())
    found = q.read(run, raw, doc, spec.max_items, spec.max_items_path)
    if found is not None:
        max_items = found.value
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
            raise StatesError("States.Runtime", f"MaxItems must be a non-negative integer, not {max_items!r}")
        if max_items:
            items = items[:max_items]
    return items, doc


def _inputs(engine: Engine, run: StateRun, spec: DistributedMapSpec, raw: Any) -> list[Any]:
    """Each child's input: the items after ItemSelector, batched by ItemBatcher."""
    q = spec.query
    items, doc = _items(engine, run, spec, raw)
    if spec.item_selector is not None:
        selector = spec.item_selector
        items = [q.evaluate(run.for_item(i, v), selector, raw, doc) for i, v in enumerate(items)]
    if spec.batcher is None:
        return items
    per_batch = _positive(run, spec, raw, doc, spec.per_batch, spec.per_batch_path, "MaxItemsPerBatch")
    per_bytes = _positive(run, spec, raw, doc, spec.bytes_per_batch, spec.bytes_per_batch_path, "MaxInputBytesPerBatch")
    batch_input = None if spec.batch_input is None else q.evaluate(run, spec.batch_input, raw, doc)
    return list(batch_items(items, max_items=per_batch, max_bytes=per_bytes, batch_input=batch_input))


def _write(
    engine: Engine,
    run: StateRun,
    spec: DistributedMapSpec,
    raw: Any,
    writer: Field,
    arns: tuple[str, str],
    outcomes: Any,
) -> Any:
    """ResultWriter: the result files in S3; the state's result names the manifest."""
    map_run_arn, child_machine_arn = arns
    params = spec.query.evaluate(run, writer, raw, spec.query.input(run, spec.flow, raw))
    if not isinstance(params, Mapping) or not params.get("Bucket"):
        raise StatesError("States.ResultWriterFailed", "The ResultWriter needs a Bucket")
    bucket, prefix = str(params["Bucket"]), str(params.get("Prefix", ""))
    manifest, files = result_files(
        outcomes, bucket=bucket, prefix=prefix, map_run_arn=map_run_arn, state_machine_arn=child_machine_arn
    )
    context = run.context()
    try:
        for key, text in files.items():
            _s3(engine, "putObject", {"Bucket": bucket, "Key": key, "Body": text}, context)
    except StatesError as exc:
        raise StatesError("States.ResultWriterFailed", f"{exc.error}: {exc.cause}") from None
    return {"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": manifest}}


def _attempt(engine: Engine, run: StateRun, spec: DistributedMapSpec, raw: Any) -> Any:
    """One attempt of the state: items, children, results (MapRunStarted .. MapRunSucceeded/Failed)."""
    inputs = _inputs(engine, run, spec, raw)
    max_c = map_number(run, spec, raw, "MaxConcurrency", 0) or _DISTRIBUTED_CONCURRENCY
    tol = tolerance(run, spec, raw)
    region_account = engine.state_machine_arn.split(":stateMachine:")[0]
    run_id = str(uuid.uuid4())
    map_run_arn = f"{region_account}:mapRun:{engine.state_machine_name}/{spec.name}:{run_id}"
    child_machine_arn = f"{region_account}:stateMachine:{engine.state_machine_name}/{spec.name}"
    run.prev = engine.history.add("MapRunStarted", run.prev, {"mapRunArn": map_run_arn})
    outcomes = _Children(engine, run, spec, inputs, tol, (map_run_arn, child_machine_arn)).run(max_c)
    failed = sum(1 for o in outcomes if o.status not in ("SUCCEEDED", "PENDING"))
    result: Any
    if spec.writer_arguments is not None:
        arns = (map_run_arn, child_machine_arn)
        result = _write(engine, run, spec, raw, spec.writer_arguments, arns, outcomes)
    else:
        result = [
            o.output if o.status == "SUCCEEDED" else {"Error": o.error, "Cause": o.cause}
            for o in outcomes
            if o.status != "PENDING"
        ]
    if not tolerated(failed, len(outcomes), tol):
        cause = f"The specified tolerated failure threshold was exceeded: {failed} of {len(outcomes)} items failed"
        details = {"error": "States.ExceedToleratedFailureThreshold", "cause": cause}
        engine.history.add("MapRunFailed", run.prev, details)
        raise StatesError("States.ExceedToleratedFailureThreshold", cause)
    run.prev = engine.history.add("MapRunSucceeded", run.prev)
    return result


class _Children:
    """The child executions of one map run, on at most ``max_concurrency`` threads (40 locally)."""

    def __init__(
        self,
        engine: Engine,
        run: StateRun,
        spec: DistributedMapSpec,
        inputs: Sequence[Any],
        tol: Tolerance | None,
        arns: tuple[str, str],
    ) -> None:
        self.engine, self.state_run, self.spec, self.tolerance = engine, run, spec, tol
        map_run_arn, self.machine_arn = arns
        run_id = map_run_arn.rsplit(":", 1)[-1][:8]
        base = self.machine_arn.replace(":stateMachine:", ":execution:")
        self.outcomes = [
            ChildOutcome(name=f"{run_id}-{i}", execution_arn=f"{base}:{run_id}-{i}", input=value, status="PENDING")
            for i, value in enumerate(inputs)
        ]
        self.lock = threading.Lock()
        self.next_index = 0
        self.failed = 0
        self.stopped = False
        self.running: dict[int, Child] = {}

    def _take(self) -> tuple[int, Child] | None:
        with self.lock:
            k = self.next_index
            if k >= len(self.outcomes) or self.stopped or self.state_run.scope.is_cancelled():
                return None
            self.next_index = k + 1
            outcome = self.outcomes[k]
            child = self.engine.child(
                self.spec.processor,
                outcome.input,
                name=outcome.name,
                state_machine_name=f"{self.engine.state_machine_name}/{self.spec.name}",
                arn=self.machine_arn,
            )
            self.running[k] = child
            return k, child

    def worker(self) -> None:
        while (taken := self._take()) is not None:
            k, child = taken
            with self.engine.clock.idle():  # the child registers itself with the clock
                result = child.run()
            with self.lock:
                self.running.pop(k, None)
                outcome = self.outcomes[k]
                outcome.status, outcome.output = result.status, result.output
                outcome.error, outcome.cause = result.error, result.cause
                outcome.start, outcome.stop = result.start, result.stop
                if result.status != "SUCCEEDED":
                    self.failed += 1
                    if not tolerated(self.failed, len(self.outcomes), self.tolerance):
                        self.stopped = True

    def _stop_all(self) -> None:
        """The parent was stopped: start no more children and stop the running ones."""
        with self.lock:
            self.stopped = True
            running = list(self.running.values())
        for child in running:
            child.stop("States.Aborted", "the parent execution stopped")

    def run(self, max_concurrency: int) -> list[ChildOutcome]:
        clock, scope = self.engine.clock, self.state_run.scope
        threads = []
        for i in range(max(1, min(max_concurrency, _LOCAL_THREADS, len(self.outcomes)))):
            registration = clock.hold()

            def target(registration: Any = registration) -> None:
                with registration():
                    self.worker()

            thread = threading.Thread(target=target, name=f"{self.spec.name}-child-{i}", daemon=True)
            threads.append(thread)
            thread.start()
        with clock.idle():
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.05)
                    if scope.is_cancelled():
                        self._stop_all()
        self.engine.check(scope)
        return self.outcomes
