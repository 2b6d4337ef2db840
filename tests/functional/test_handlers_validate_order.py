"""ValidateOrder: the input validation error the state machine catches, inStock, and offloading."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from sfn_workers import ValidationError
from tests.functional.sample_handlers_support import (  # noqa: F401  (fixture)
    FakeLambdaContext,
    HandlerLoader,
    event,
    handlers_fixture,
    make_bucket,
)

BUCKET = "order-payloads"


@pytest.fixture
def validate(aws: str, handlers: HandlerLoader) -> Any:
    make_bucket(BUCKET)
    return handlers.load("validate_order", SFN_WORKERS_BUCKET=BUCKET, SFN_WORKERS_PREFIX="sfn-workers/")


def test_a_valid_order_is_priced_and_in_stock(validate: Any) -> None:
    # GIVEN the happy-path order as the ValidateOrder state passes it
    # WHEN the handler runs
    out = validate.handler(event("validate_order.json"), FakeLambdaContext())
    # THEN the Choice can route on inStock, and the total is the sum of the lines in cents
    assert out["inStock"] is True
    assert out["outOfStock"] == []
    assert out["totalCents"] == 2 * 1999 + 350
    assert out["requiresApproval"] is False
    assert out["backorder"] == {"attempts": 0}
    assert out["items"][0]["sku"] == "BOOK-0001"


def test_an_invalid_order_fails_as_ValidationError_naming_the_fields(validate: Any) -> None:
    # GIVEN an order with a bad e-mail and a zero quantity
    # WHEN the handler runs THEN it raises the error the state machine's Catch matches
    with pytest.raises(ValidationError) as raised:
        validate.handler(event("validate_order-invalid.json"), FakeLambdaContext())
    assert type(raised.value).__name__ == "ValidationError"
    message = str(raised.value)
    assert "customer.email" in message and "items.0.quantity" in message
    assert "not-an-email" not in message  # input values stay out of the error (personal data)


def test_a_repeated_sku_is_a_validation_error(validate: Any) -> None:
    order = event("validate_order.json")
    order["order"]["items"].append(dict(order["order"]["items"][0]))
    with pytest.raises(ValidationError, match="BOOK-0001"):
        validate.handler(order, FakeLambdaContext())


def test_out_of_stock_items_are_listed_and_inStock_is_false(validate: Any) -> None:
    order = {"order": event("execution-out-of-stock.json")}
    out = validate.handler(order, FakeLambdaContext())
    assert out["inStock"] is False
    assert out["outOfStock"] == ["OOS-LAMP-7"]


def test_the_backorder_loop_can_hand_the_checked_order_back_in(validate: Any) -> None:
    # GIVEN the output of a first run, with the counter CountBackorder increased
    first = validate.handler({"order": event("execution-out-of-stock.json")}, FakeLambdaContext())
    first["backorder"] = {"attempts": 2}
    # WHEN RecheckInventory passes it back THEN derived fields are recomputed and the counter kept
    again = validate.handler({"order": first}, FakeLambdaContext())
    assert again["backorder"] == {"attempts": 2}
    assert again["inStock"] is False and again["totalCents"] == first["totalCents"]


def test_a_large_order_is_offloaded_but_keeps_routing_fields_inline(validate: Any) -> None:
    # GIVEN the large order (about 96 KiB of attachment)
    large = event("validate_order-large.json")
    assert len(json.dumps(large["order"]).encode()) > 64 * 1024
    # WHEN ValidateOrder runs
    out = validate.handler(large, FakeLambdaContext())
    text = json.dumps(out, separators=(",", ":"))
    # THEN its result fits under the 64 KiB threshold, with what Choice/Map states read still inline
    assert len(text.encode()) < 64 * 1024
    assert out["inStock"] is True and out["requiresApproval"] is True
    assert len(out["items"]) == 12 and out["orderId"] == "order-1004"
    # AND the attachments went to S3 under the execution's name, where a later task resolves them
    pointer = out["attachments"]["sfn_workers_s3"]
    assert pointer["bucket"] == BUCKET
    assert re.match(r"sfn-workers/[0-9a-f]{2}/order-1001-run/", pointer["key"])
    stored = boto3.client("s3").head_object(Bucket=BUCKET, Key=pointer["key"])
    assert stored["ContentLength"] == pointer["bytes"]
