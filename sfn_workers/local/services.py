"""Task integrations other than Lambda: SNS, SQS (with event source mappings), DynamoDB, AWS SDK calls.

Every call goes through boto3 to the embedded emulator, and answers the way Step Functions does:

* optimized integrations (``arn:aws:states:::sns:publish``, ``:::sqs:sendMessage``,
  ``:::dynamodb:putItem|getItem|updateItem|deleteItem``) return the API response with
  ``SdkHttpMetadata``/``SdkResponseMetadata``; their errors are ``SNS.<Code>Exception``,
  ``SQS.<Code>Exception``, ``DynamoDB.<Code>Exception``;
* ``arn:aws:states:::aws-sdk:<service>:<action>`` calls any API the emulator serves, returns the
  response (blobs as text, timestamps as ISO 8601) and fails with ``<Service>.<Code>Exception``
  (``S3.NoSuchKeyException``, ``DynamoDb.ResourceNotFoundException``), as AWS names them;
* a JSON object given as an SQS ``MessageBody`` or SNS ``Message`` is sent as its JSON text.

An SQS queue that a template function consumes (``Events: Type: SQS`` or an
``AWS::Lambda::EventSourceMapping``) is polled by a :class:`SqsDelivery` thread that invokes the
function with SQS batches of up to ``BatchSize`` records, deletes what it handled and, with
``ReportBatchItemFailures``, leaves the reported failures on the queue. While a message that a
state sent is on its way to the function, the execution's virtual clock is held still, so a
``.waitForTaskToken`` task cannot time out in simulated time before its worker has even run.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.errors import aws_error_code, aws_status_code
from sfn_workers.local.lambdas import LocalFunction
from sfn_workers.local.sam import ACCOUNT, REGION, EventSourceMapping

__all__ = ["Services", "SqsDelivery", "error_name_for", "parse_resource"]

_log = logging.getLogger("sfn_workers.local")

_OPTIMIZED = {
    "sns": ("sns", "SNS", {"publish": "publish"}),
    "sqs": ("sqs", "SQS", {"sendMessage": "send_message"}),
    "dynamodb": (
        "dynamodb",
        "DynamoDB",
        {"putItem": "put_item", "getItem": "get_item", "updateItem": "update_item", "deleteItem": "delete_item"},
    ),
}
# Step Functions' service names (aws-sdk:<name>) that boto3 spells differently.
_BOTO_NAMES = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs"}
# How AWS prefixes the error names of aws-sdk integrations (PascalCase of the service name).
_SDK_PREFIX = {
    "s3": "S3",
    "dynamodb": "DynamoDb",
    "sqs": "Sqs",
    "sns": "Sns",
    "sfn": "Sfn",
    "eventbridge": "EventBridge",
    "secretsmanager": "SecretsManager",
    "cloudwatchlogs": "CloudWatchLogs",
    "ssm": "Ssm",
    "kms": "Kms",
}
# Query-protocol codes whose modeled (SDK exception) name differs.
_CODE_ALIASES: dict[str, str] = {"NonExistentQueue": "QueueDoesNotExist"}
_PATTERNS = (".waitForTaskToken", ".sync:2", ".sync")


def parse_resource(resource: str) -> tuple[str, str, str]:
    """``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` -> ("sqs", "sendMessage", ".waitForTaskToken")."""
    prefix = "arn:aws:states:::"
    if not resource.startswith(prefix):
        raise ValueError(f"not a service integration: {resource}")
    rest = resource[len(prefix) :]
    pattern = ""
    for suffix in _PATTERNS:
        if rest.endswith(suffix):
            rest, pattern = rest[: -len(suffix)], suffix
            break
    service, _, action = rest.rpartition(":")
    return service, action, pattern


def error_name_for(prefix: str, exc: BaseException) -> str:
    """``SNS.NotFoundException`` for moto's/AWS's ``NotFound``: AWS adds the Exception suffix."""
    code = aws_error_code(exc) or type(exc).__name__
    code = code.rsplit(".", 1)[-1]  # AWS.SimpleQueueService.NonExistentQueue -> NonExistentQueue
    code = _CODE_ALIASES.get(code, code)
    if not code.endswith("Exception"):
        code += "Exception"
    return f"{prefix}.{code}"


def _task_error(error: str, cause: str | None) -> Exception:
    from sfn_workers.local.asl import TaskError

    return TaskError(error, cause)


def _plain(value: Any) -> Any:
    """A botocore response as JSON: blobs as text, timestamps as ISO 8601, no ResponseMetadata."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "read") and callable(value.read):  # StreamingBody
        return _plain(value.read())
    return value


def _sdk_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    meta = response.get("ResponseMetadata") or {}
    headers = {str(k): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": meta.get("HTTPStatusCode", 200),
        },
        "SdkResponseMetadata": {"RequestId": meta.get("RequestId") or str(uuid.uuid4())},
    }


def _json_text(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _message_attributes(attributes: Any) -> Any:
    """Step Functions takes BinaryValue as base64 text; boto3 wants bytes."""
    if not isinstance(attributes, Mapping):
        return attributes
    out = {}
    for name, spec in attributes.items():
        spec = dict(spec) if isinstance(spec, Mapping) else spec
        if isinstance(spec, dict) and isinstance(spec.get("BinaryValue"), str):
            spec["BinaryValue"] = base64.b64decode(spec["BinaryValue"])
        out[name] = spec
    return out


Hold = Callable[[], Any]  # what VirtualClock.hold() returns: entering and leaving it releases the hold


def _release(hold: Hold) -> None:
    with hold():
        pass


class SqsDelivery:
    """An SQS event source mapping: polls one queue and invokes one function with batches."""

    IDLE_POLL_SECONDS = 1.0
    #: On the virtual clock a failed message comes straight back; the clock waits for this many
    #: redeliveries, then moves on (so a worker that always fails still lets its task time out).
    HELD_REDELIVERIES = 2

    def __init__(
        self,
        client: Any,
        queue_url: str,
        queue_arn: str,
        function: LocalFunction,
        mapping: EventSourceMapping,
        *,
        retry_visibility: int = 0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.mapping = mapping
        self.retry_visibility = retry_visibility
        self.on_error = on_error
        self.batches: list[int] = []  # sizes of the batches delivered (for tests and progress)
        self._holds: dict[str, Hold] = {}  # sent by a state, not yet received
        self._inflight: dict[str, list[Hold]] = {}  # being delivered
        self._finished: OrderedDict[str, None] = OrderedDict()  # recently delivered
        # Failed on the virtual clock: coming straight back, so the clock stays held until it has
        # been delivered again (or the queue no longer gives it, e.g. moved to its dead-letter queue).
        self._retrying: dict[str, list[Hold]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"sqs-esm:{self.function.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            holds, self._holds = list(self._holds.values()), {}
            holds += [h for waiting in self._retrying.values() for h in waiting]
            self._retrying = {}
        for hold in holds:  # release what will never be delivered now
            _release(hold)

    def expect(self, message_id: str, hold: Hold) -> None:
        """A state sent ``message_id`` after taking ``hold`` (its clock's registration, counted
        from before the send): released once the function has run on that message."""
        with self._lock:
            if message_id in self._finished:
                late = True
            elif message_id in self._inflight:
                self._inflight[message_id].append(hold)
                late = False
            elif message_id in self._retrying:
                self._retrying[message_id].append(hold)
                late = False
            else:
                self._holds[message_id] = hold
                late = False
        if late:
            _release(hold)
        self._wake.set()

    def poke(self) -> None:
        """Poll now (a message was just sent)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.IDLE_POLL_SECONDS)
            self._wake.clear()
            while not self._stop.is_set():
                try:
                    messages = self._receive()
                except Exception as exc:
                    self._report(exc)
                    break
                if not messages:
                    self._give_up_retries()
                    break
                self._deliver(messages)
                if len(messages) < self.mapping.batch_size:
                    break  # the queue is drained: wait for the next send (or the idle poll)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.mapping.batch_size:
            asked = min(10, self.mapping.batch_size - len(messages))
            answer = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=asked,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            got = answer.get("Messages") or []
            messages.extend(got)
            if len(got) < asked:
                break  # drained for now: deliver what there is rather than ask an empty queue again
        return messages

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS poller sends."""
        records = []
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message.get("Body", ""),
                    "attributes": dict(message.get("Attributes") or {}),
                    "messageAttributes": {
                        name: {
                            "stringValue": spec.get("StringValue"),
                            "binaryValue": base64.b64encode(spec["BinaryValue"]).decode()
                            if "BinaryValue" in spec
                            else None,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": spec.get("DataType"),
                        }
                        for name, spec in attributes.items()
                    },
                    "md5OfBody": message.get("MD5OfBody"),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
            )
        return {"Records": records}

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        ids = [m["MessageId"] for m in messages]
        receives = {
            m["MessageId"]: int(dict(m.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) for m in messages
        }
        with self._lock:
            for message_id in ids:
                hold = self._holds.pop(message_id, None)
                self._inflight[message_id] = [hold] if hold is not None else []
                self._inflight[message_id] += self._retrying.pop(message_id, [])
        failed: set[str] = set()
        try:
            failed = self._run_batch(messages)
        finally:
            with self._lock:
                holds = []
                for message_id in ids:
                    waiting = self._inflight.pop(message_id, [])
                    if (
                        message_id in failed
                        and self.retry_visibility == 0
                        and receives[message_id] <= self.HELD_REDELIVERIES
                        and not self._stop.is_set()
                    ):
                        self._retrying[message_id] = waiting
                    else:
                        holds += waiting
                        self._finished[message_id] = None
                while len(self._finished) > 10_000:
                    self._finished.popitem(last=False)
            for hold in holds:
                _release(hold)

    def _give_up_retries(self) -> None:
        """The queue is empty: failed messages that did not come back will not be delivered."""
        with self._lock:
            holds = [h for waiting in self._retrying.values() for h in waiting]
            self._retrying = {}
        for hold in holds:
            _release(hold)

    def _run_batch(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with one batch; the ids of the messages that stay on the queue."""
        self.batches.append(len(messages))
        failed: set[str]
        try:
            response = self.function.invoke(self.event(messages))
        except Exception as exc:
            self._report(exc)
            failed = {m["MessageId"] for m in messages}
        else:
            failed = set()
            if self.mapping.report_batch_item_failures and isinstance(response, Mapping):
                for item in response.get("batchItemFailures") or []:
                    if isinstance(item, Mapping) and item.get("itemIdentifier"):
                        failed.add(str(item["itemIdentifier"]))
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        for message in messages:
            if message["MessageId"] in failed:
                with contextlib.suppress(Exception):
                    self.client.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.retry_visibility,
                    )
        if failed and self.retry_visibility == 0:
            self._stop.wait(0.2)  # a failing batch comes back, but not in a busy loop
            self._wake.set()  # and is received again at once, not at the next idle poll
        return failed

    def _report(self, exc: BaseException) -> None:
        _log.warning("SQS delivery to %s failed: %s", self.function.name, exc)
        if self.on_error is not None:
            self.on_error(exc)


class Services:
    """Runs the non-Lambda Task resources of one runner against the emulator."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.deliveries: dict[str, SqsDelivery] = {}  # queue name -> its event source mapping

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (one per process and emulator, as a warm Lambda keeps its own)."""
        from sfn_workers.local.emulator import client_of

        return client_of(service, self.endpoint_url, attempts=2)

    def add_delivery(
        self,
        queue_name: str,
        function: LocalFunction,
        mapping: EventSourceMapping,
        *,
        retry_visibility: int = 0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> SqsDelivery:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        delivery = SqsDelivery(
            sqs,
            url,
            f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}",
            function,
            mapping,
            retry_visibility=retry_visibility,
            on_error=on_error,
        )
        self.deliveries[queue_name] = delivery
        delivery.start()
        return delivery

    def close(self) -> None:
        for delivery in self.deliveries.values():
            delivery.stop()
        self.deliveries.clear()

    def call(self, resource: str, parameters: Any, hold: Callable[[], Hold] | None = None) -> Any:
        """Run ``resource`` with ``parameters``; the result, or TaskError with AWS's error name.

        ``hold`` (the execution clock's ``hold``) is taken for an SQS message that a mapped
        function will receive, and released when that function has run.
        """
        try:
            service, action, _pattern = parse_resource(resource)
        except ValueError as exc:
            raise _task_error("States.Runtime", str(exc)) from exc
        params = dict(parameters) if isinstance(parameters, Mapping) else {}
        if parameters is not None and not isinstance(parameters, Mapping):
            raise _task_error("States.Runtime", f"{resource}: Parameters must be a JSON object")
        if service in _OPTIMIZED:
            boto_name, prefix, actions = _OPTIMIZED[service]
            method = actions.get(action)
            if method is None:
                raise _task_error("States.Runtime", f"the local runner does not support {resource}")
            params = self._optimized_params(service, params)
            delivery = self._delivery_for(params) if (service, action) == ("sqs", "sendMessage") else None
            held = hold() if (delivery is not None and hold is not None) else None
            try:
                response = self._call(boto_name, method, params, prefix)
            except BaseException:
                if held is not None:
                    _release(held)
                raise
            if delivery is not None:
                message_id = str(response.get("MessageId"))
                if held is not None:
                    delivery.expect(message_id, held)
                else:
                    delivery.poke()
            return {**_plain(response), **_sdk_metadata(response)}
        if service.startswith("aws-sdk:"):
            name = service.split(":", 1)[1]
            from botocore import xform_name

            prefix = _SDK_PREFIX.get(name, name[:1].upper() + name[1:])
            response = self._call(_BOTO_NAMES.get(name, name), xform_name(action), params, prefix)
            return _plain(response)
        raise _task_error("States.Runtime", f"the local runner does not support the integration {resource}")

    @staticmethod
    def _optimized_params(service: str, params: dict[str, Any]) -> dict[str, Any]:
        if service == "sqs" and "MessageBody" in params:
            params["MessageBody"] = _json_text(params["MessageBody"])
        if service == "sns" and "Message" in params:
            params["Message"] = _json_text(params["Message"])
        if "MessageAttributes" in params:
            params["MessageAttributes"] = _message_attributes(params["MessageAttributes"])
        return params

    def _call(self, boto_name: str, method: str, params: Mapping[str, Any], prefix: str) -> Any:
        from botocore.exceptions import ClientError, ParamValidationError

        try:
            client = self.client(boto_name)
        except Exception as exc:
            raise _task_error("States.Runtime", f"the local runner cannot call {boto_name}: {exc}") from exc
        operation = getattr(client, method, None)
        if operation is None:
            raise _task_error("States.Runtime", f"{boto_name} has no action {method}")
        try:
            return operation(**params)
        except ParamValidationError as exc:
            raise _task_error("States.Runtime", f"{prefix} {method}: {exc}") from exc
        except ClientError as exc:
            status = aws_status_code(exc)
            answer: Mapping[str, Any] = exc.response
            request_id = dict(answer.get("ResponseMetadata") or {}).get("RequestId", "")
            message = dict(answer.get("Error") or {}).get("Message") or str(exc)
            cause = f"{message} (Service: {prefix}, Status Code: {status}, Request ID: {request_id})"
            raise _task_error(error_name_for(prefix, exc), cause) from exc
        except Exception as exc:  # botocore errors, an unparsable answer (the emulator's 500), a dropped connection
            raise _task_error("States.TaskFailed", f"{prefix} {method} failed on the emulator: {exc}") from exc

    def _delivery_for(self, params: Mapping[str, Any]) -> SqsDelivery | None:
        queue = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        return self.deliveries.get(queue)
