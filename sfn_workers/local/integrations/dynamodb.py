"""``arn:aws:states:::dynamodb:getItem|putItem|updateItem|deleteItem``: the optimised DynamoDB integration.

Its errors are named after the AWS SDK for Java v1 that AWS runs it with: ``DynamoDB.<Modelled>Exception``,
and ``DynamoDB.AmazonDynamoDBException`` for the rest (a ValidationException, for one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfn_workers.local.integrations.common import Call, runtime_error
from sfn_workers.local.integrations.sdk_model import optimised_call

__all__ = ["DynamoDb"]

_ACTIONS = {"getItem": "GetItem", "putItem": "PutItem", "updateItem": "UpdateItem", "deleteItem": "DeleteItem"}


class DynamoDb:
    def __init__(self, client: Callable[[str], Any]) -> None:
        self.client = client

    def __call__(self, call: Call) -> Any:
        operation = _ACTIONS.get(call.action)
        if operation is None:
            raise runtime_error(
                f"{call.resource}: the optimised DynamoDB integration has {', '.join(_ACTIONS)} "
                "(use aws-sdk:dynamodb for the other actions)"
            )
        return optimised_call(
            self.client("dynamodb"), "DynamoDB", "AmazonDynamoDBException", operation, call.parameters
        )
