"""``arn:aws:states:::sqs:sendMessage``: the optimised SQS integration (a JSON ``MessageBody`` is sent as text).

A message sent to a queue that a template function consumes holds the execution's virtual clock
until that function has run on it (see :class:`SqsDelivery`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.integrations.common import Call, json_text, release, runtime_error
from sfn_workers.local.integrations.sdk_model import optimised_call
from sfn_workers.local.integrations.sns import message_attributes
from sfn_workers.local.integrations.sqs_delivery import SqsDelivery

__all__ = ["Sqs"]


class Sqs:
    def __init__(self, client: Callable[[str], Any], deliveries: Mapping[str, SqsDelivery]) -> None:
        self.client = client
        self.deliveries = deliveries  # queue name -> its event source mapping

    def __call__(self, call: Call) -> Any:
        if call.action != "sendMessage":
            raise runtime_error(f"{call.resource}: the optimised SQS integration has sendMessage only")
        params = dict(call.parameters)
        if "MessageBody" in params:
            params["MessageBody"] = json_text(params["MessageBody"])
        if "MessageAttributes" in params:
            params["MessageAttributes"] = message_attributes(params["MessageAttributes"])
        queue = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        delivery = self.deliveries.get(queue)
        held = call.hold() if (delivery is not None and call.hold is not None) else None
        try:
            result = optimised_call(self.client("sqs"), "SQS", "AmazonSQSException", "SendMessage", params)
        except BaseException:
            if held is not None:
                release(held)
            raise
        if delivery is not None:
            if held is not None:
                delivery.expect(str(result.get("MessageId")), held)
            else:
                delivery.poke()
        return result
