"""AWS's view of an SDK call, read from botocore's service models.

Step Functions makes ``aws-sdk`` calls with the AWS SDK for Java v2, and users write what that SDK
names: the service as its client's name in lower case (``aws-sdk:sfn``, ``aws-sdk:bedrockagent``),
members with their first letter capitalised (``StateMachineArn`` for botocore's
``stateMachineArn``), errors as ``<Client prefix>.<Exception class>`` (``Sfn.ExecutionDoesNotExistException``;
an error the model does not name is the service's base exception, ``DynamoDb.DynamoDbException``).
This module translates between those names and botocore's, so any service moto serves works.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError, ParamValidationError
from botocore.loaders import create_loader

from sfn_workers.errors import aws_error_code, aws_status_code
from sfn_workers.local.asl.integrations import TaskError
from sfn_workers.local.integrations.common import plain, runtime_error, sdk_metadata

__all__ = [
    "ApiCaller",
    "boto_service",
    "capitalised",
    "error_name",
    "java_client_name",
    "operation_for",
    "optimised_call",
    "to_aws",
    "to_botocore",
]

# Query-protocol codes whose modelled (SDK exception) name differs.
_CODE_ALIASES: dict[str, str] = {"NonExistentQueue": "QueueDoesNotExist"}
_SERVICE_ID = re.compile(r'"serviceId"\s*:\s*"([^"]+)"')
_index: dict[str, str] | None = None
_index_lock = threading.Lock()


def java_client_name(service_id: str) -> str:
    """The AWS SDK for Java v2's client prefix for a botocore ``serviceId``: ``DynamoDB`` -> ``DynamoDb``,
    ``SFN`` -> ``Sfn``, ``CloudWatch Logs`` -> ``CloudWatchLogs`` (its codegen's word splitting)."""
    text = re.sub(r"[^A-Za-z0-9]+", " ", service_id)
    text = re.sub(r"(?<=[a-z])(?=[A-Z][a-zA-Z0-9])", " ", text)  # AcmSuccess -> Acm Success
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)  # ACMSuccess -> ACM Success
    text = re.sub(r"([0-9])([a-zA-Z])", r"\1 \2", text)  # s3ec2 -> s3 ec2
    return "".join(word[:1].upper() + word[1:].lower() for word in text.split())


def _service_ids() -> dict[str, str]:
    """botocore service name -> serviceId, read from the head of each installed model (~0.1 s once)."""
    loader = create_loader()
    found: dict[str, str] = {}
    for name in loader.list_available_services("service-2"):
        version = loader.determine_latest_version(name, "service-2")
        for root in loader.search_paths:
            base = os.path.join(root, name, version, "service-2.json")
            head = _head(base)
            if head is not None:
                match = _SERVICE_ID.search(head)
                if match:
                    found[name] = match.group(1)
                break
    return found


def _head(base: str) -> str | None:
    if os.path.exists(base + ".gz"):
        with gzip.open(base + ".gz", "rt", encoding="utf-8") as fh:
            return fh.read(4096)
    if os.path.exists(base):
        with open(base, encoding="utf-8") as fh:
            return fh.read(4096)
    return None


def _names() -> dict[str, str]:
    """Step Functions' SDK service name (``bedrockagent``) -> botocore's (``bedrock-agent``)."""
    global _index
    with _index_lock:
        if _index is None:
            index: dict[str, str] = {}
            for name, service_id in sorted(_service_ids().items()):
                index.setdefault(java_client_name(service_id).lower(), name)
            _index = index
        return _index


def boto_service(sdk_name: str) -> str | None:
    """The botocore service of ``aws-sdk:<sdk_name>``, or None when botocore has no such service."""
    return _names().get(sdk_name.lower())


def capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def operation_for(service_model: Any, action: str) -> str | None:
    """The model's operation for an ASL action (``listExecutions`` -> ``ListExecutions``)."""
    wanted = capitalised(action)
    return wanted if wanted in service_model.operation_names else None


def to_botocore(shape: Any, value: Any) -> Any:
    """Parameters as written in ASL -> botocore's: members matched by name with any first-letter
    case, nulls dropped (AWS treats them as absent). Unknown members pass through, so botocore's
    own validation names them."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members
        by_name = {capitalised(m): m for m in members}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            member = key if key in members else by_name.get(capitalised(key))
            out[member or key] = to_botocore(members[member], item) if member else item
        return out
    if kind == "list" and isinstance(value, list):
        return [to_botocore(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: to_botocore(shape.value, v) for k, v in value.items() if v is not None}
    return value


def to_aws(shape: Any, value: Any) -> Any:
    """A botocore response -> what Step Functions returns: member names capitalised, blobs as text,
    timestamps as ISO 8601, no ResponseMetadata."""
    if shape is None:
        return plain(value)
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {capitalised(k): to_aws(members.get(k), v) for k, v in value.items() if k != "ResponseMetadata"}
    if kind == "list" and isinstance(value, list | tuple):
        return [to_aws(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: to_aws(shape.value, v) for k, v in value.items()}
    return plain(value)


def _modelled(service_model: Any) -> dict[str, str]:
    """Error code -> modelled exception shape name."""
    codes: dict[str, str] = {}
    for shape in service_model.error_shapes:
        codes[shape.name] = shape.name
        codes.setdefault(str(shape.error_code), shape.name)
    return codes


def error_name(prefix: str, base: str, exc: BaseException, service_model: Any = None) -> str:
    """AWS's name for a failed call: ``<prefix>.<Exception class>``, the class named after the
    modelled error (``NoSuchKey`` -> ``NoSuchKeyException``), or ``base`` (the service's base
    exception) for an error the model does not know."""
    code = aws_error_code(exc) or type(exc).__name__
    code = _CODE_ALIASES.get(code.rsplit(".", 1)[-1], code.rsplit(".", 1)[-1])
    if service_model is not None:
        shape = _modelled(service_model).get(code)
        if shape is None:
            return f"{prefix}.{base}"
        code = shape
    return f"{prefix}.{code if code.endswith('Exception') else code + 'Exception'}"


class ApiCaller:
    """Calls one botocore operation and turns its failure into AWS's Task error."""

    def __init__(self, client: Any, prefix: str, base: str) -> None:
        self.client = client
        self.prefix = prefix
        self.base = base

    def __call__(self, operation: str, params: Mapping[str, Any]) -> Any:
        method = getattr(self.client, xform_name(operation), None)
        if method is None:
            raise runtime_error(f"{self.prefix} has no action {operation}")
        try:
            return method(**params)
        except ParamValidationError as exc:
            raise runtime_error(f"{self.prefix}.{operation}: {exc}") from exc
        except ClientError as exc:
            status = aws_status_code(exc)
            answer: Mapping[str, Any] = exc.response
            request_id = dict(answer.get("ResponseMetadata") or {}).get("RequestId", "")
            message = dict(answer.get("Error") or {}).get("Message") or str(exc)
            cause = f"{message} (Service: {self.prefix}, Status Code: {status}, Request ID: {request_id})"
            model = self.client.meta.service_model
            raise TaskError(error_name(self.prefix, self.base, exc, model), cause) from exc
        except Exception as exc:  # an unparsable answer (the emulator's 500), a dropped connection
            raise TaskError("States.TaskFailed", f"{self.prefix}.{operation} failed on the emulator: {exc}") from exc


def optimised_call(client: Any, prefix: str, base: str, operation: str, params: Mapping[str, Any]) -> Any:
    """One optimised-integration call: the API response with AWS's SDK metadata, or AWS's error
    (``SNS.NotFoundException``; an error the model does not name is ``<prefix>.<base>``)."""
    op_model = client.meta.service_model.operation_model(operation)
    response = ApiCaller(client, prefix, base)(operation, to_botocore(op_model.input_shape, params))
    return {**plain(response), **sdk_metadata(response)}
