"""``arn:aws:states:::aws-sdk:<service>:<action>``: any API the emulator serves, named as AWS names it.

The service is the AWS SDK's (``sfn``, ``eventbridge``, ``bedrockagent``), mapped to botocore's
(``stepfunctions``, ``events``, ``bedrock-agent``); parameters and the response are translated with
botocore's service model (see :mod:`sfn_workers.local.integrations.sdk_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfn_workers.local.integrations.common import Call, runtime_error
from sfn_workers.local.integrations.sdk_model import (
    ApiCaller,
    boto_service,
    java_client_name,
    operation_for,
    to_aws,
    to_botocore,
)

__all__ = ["AwsSdk"]


class AwsSdk:
    """The ``aws-sdk`` integration, on clients that ``client(botocore service name)`` gives."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self.client = client

    def __call__(self, call: Call) -> Any:
        sdk_name = call.service.split(":", 1)[1]
        boto_name = boto_service(sdk_name)
        if boto_name is None:
            raise runtime_error(
                f"{call.resource}: {sdk_name!r} is not an AWS SDK service name known to botocore "
                "(write the SDK's client name in lower case, e.g. aws-sdk:sfn, aws-sdk:bedrockagent)"
            )
        client = self.client(boto_name)
        model = client.meta.service_model
        prefix = java_client_name(model.service_id)
        operation = operation_for(model, call.action)
        if operation is None:
            raise runtime_error(f"{call.resource}: {prefix} has no action {call.action!r}")
        op_model = model.operation_model(operation)
        params = to_botocore(op_model.input_shape, call.parameters)
        response = ApiCaller(client, prefix, f"{prefix}Exception")(operation, params)
        return to_aws(op_model.output_shape, response)
