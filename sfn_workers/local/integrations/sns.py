"""``arn:aws:states:::sns:publish``: the optimised SNS integration (a JSON ``Message`` is sent as text)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.integrations.common import Call, json_text, runtime_error
from sfn_workers.local.integrations.sdk_model import optimised_call

__all__ = ["Sns", "message_attributes"]


def message_attributes(attributes: Any) -> Any:
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


class Sns:
    def __init__(self, client: Callable[[str], Any]) -> None:
        self.client = client

    def __call__(self, call: Call) -> Any:
        if call.action != "publish":
            raise runtime_error(f"{call.resource}: the optimised SNS integration has publish only")
        params = dict(call.parameters)
        if "Message" in params:
            params["Message"] = json_text(params["Message"])
        if "MessageAttributes" in params:
            params["MessageAttributes"] = message_attributes(params["MessageAttributes"])
        return optimised_call(self.client("sns"), "SNS", "AmazonSNSException", "Publish", params)
