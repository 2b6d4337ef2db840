"""ShipItem (pointer resolution in a Map item) and GenerateInvoice (SQS batch), each reporting the
way the state machine expects. ManualApproval and ApprovalDecision: test_handlers_approval.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.sample_handlers_support import (  # noqa: F401  (fixture)
    FakeLambdaContext,
    HandlerLoader,
    event,
    handlers_fixture,
    make_bucket,
)

BUCKET = "order-payloads"


def test_ship_item_resolves_offloaded_attachments_and_ships_one_line(aws: str, handlers: HandlerLoader) -> None:
    # GIVEN ValidateOrder offloaded a large order's attachments to S3
    make_bucket(BUCKET)
    env = {"SFN_WORKERS_BUCKET": BUCKET, "SFN_WORKERS_PREFIX": "sfn-workers/"}
    checked = handlers.load("validate_order", **env).handler(event("validate_order-large.json"), FakeLambdaContext())
    assert "sfn_workers_s3" in checked["attachments"]
    ship = handlers.load("ship_item", **env)
    # WHEN the Map's ItemSelector hands ShipItem one item and the pointer
    payload = {
        "shipment": {
            "orderId": checked["orderId"],
            "item": checked["items"][3],
            "shippingAddress": checked["shippingAddress"],
            "attachments": checked["attachments"],
        },
        "sfn_context": {"execution": "order-1004-run", "state": "ShipItem"},
    }
    out = ship.handler(payload, FakeLambdaContext())
    # THEN it saw the real attachment list, and its result is the one line's shipment
    assert out["attachments"] == 1
    assert out["sku"] == "PLAQUE-003" and out["quantity"] == checked["items"][3]["quantity"]
    # AND a retried ShipItem books the same parcel (same tracking id)
    assert ship.handler(payload, FakeLambdaContext())["trackingId"] == out["trackingId"]


def test_ship_item_refuses_a_pointer_outside_its_bucket(aws: str, handlers: HandlerLoader) -> None:
    make_bucket(BUCKET)
    ship = handlers.load("ship_item", SFN_WORKERS_BUCKET=BUCKET, SFN_WORKERS_PREFIX="sfn-workers/")
    payload = event("ship_item.json")
    payload["shipment"]["attachments"] = {
        "sfn_workers_s3": {
            "v": 1,
            "bucket": "someone-elses-bucket",
            "key": "sfn-workers/x/y.json",
            "bytes": 2,
            "sha256": "0" * 64,
            "encoding": "json",
        }
    }
    with pytest.raises(Exception) as raised:
        ship.handler(payload, FakeLambdaContext())
    assert type(raised.value).__name__ == "PayloadPointerError"


@pytest.fixture
def tokens(sfn_endpoint: Any) -> Any:
    return sfn_endpoint.backend


def test_generate_invoice_reports_each_sqs_record(handlers: HandlerLoader, tokens: Any) -> None:
    # GIVEN an SQS batch of two invoice requests, one of them malformed
    invoice = handlers.load("generate_invoice")
    batch = event("generate_invoice-sqs.json")
    good = batch["Records"][0]
    body = json.loads(good["body"])
    good_token = tokens.issue()
    body["taskToken"] = good_token
    good["body"] = json.dumps(body)
    bad_token = tokens.issue()
    bad = dict(good, messageId="bad-1", body=json.dumps(dict(body, taskToken=bad_token, shipments=[])))
    batch["Records"] = [good, bad]
    # WHEN the worker runs the batch
    response = invoice.handler(batch, FakeLambdaContext())
    # THEN both outcomes were reported, so SQS redelivers nothing
    assert response == {"batchItemFailures": []}
    [success] = tokens.outcomes[good_token]
    assert success.kind == "success"
    assert success.json()["invoiceId"].startswith("INV-") and success.json()["lines"] == 2
    [failure] = tokens.outcomes[bad_token]
    assert failure.kind == "failure" and failure.error == "ValidationError"
