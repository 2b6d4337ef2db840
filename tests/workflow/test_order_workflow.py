"""The sample order workflow (template.yaml) end to end on the local runner: the handlers of
handlers/ in-process, S3/SQS/SNS/DynamoDB on the embedded emulator, waits on the virtual clock."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import LocalRunner
from sfn_workers.local.graph import trace

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
LIMIT = 262_144  # bytes a state's input or output may have

pytestmark = pytest.mark.skipif(not TEMPLATE.is_file(), reason="the sample template is not there")


def order(
    order_id: str, *, skus: tuple[str, ...] = ("BOOK-1", "PEN-2"), price: int = 1500, **extra: Any
) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "customer": {"id": "c-1", "email": "ann@example.com"},
        "shippingAddress": {
            "name": "Ann Example",
            "line1": "1 Main St",
            "city": "Springfield",
            "postalCode": "12345",
            "country": "US",
        },
        "currency": "USD",
        "card": {"token": "tok_visa_4242"},
        "items": [{"sku": sku, "quantity": 1, "unitPriceCents": price} for sku in skus],
        **extra,
    }


@pytest.fixture(scope="module", params=["in-process", "http"])
def runner(request: pytest.FixtureRequest) -> Iterator[LocalRunner]:
    """The sample on the local runner, with the handlers' AWS calls answered in-process (the
    default) and over the embedded emulator's HTTP port (what another process uses)."""
    with LocalRunner(TEMPLATE, transport=request.param) as local:
        yield local


def path_of(result: Any) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]


def test_happy_path(runner: LocalRunner) -> None:
    result = runner.run(order("o-happy"))

    assert result.status == "SUCCEEDED", result.cause
    taken = path_of(result)
    for state in ("ValidateOrder", "CheckInventory", "ProcessPayment", "ChargeCard", "SendConfirmation"):
        assert state in taken
    assert taken[-2:] == ["GenerateInvoice", "OrderComplete"]
    assert taken.count("ShipItem") == 2
    assert "ManualApproval" not in taken
    output = result.output
    assert output["inStock"] is True
    assert output["payment"]["charge"]["orderId"] == "o-happy"
    assert output["payment"]["confirmationMessageId"]
    assert sorted(s["sku"] for s in output["shipments"]) == ["BOOK-1", "PEN-2"]
    assert all(s["trackingId"] for s in output["shipments"])
    assert output["invoice"]["orderId"] == "o-happy"
    assert output["invoice"]["lines"] == 2


def test_an_invalid_order_is_rejected(runner: LocalRunner) -> None:
    bad = order("o-bad")
    bad["customer"]["email"] = "not-an-email"

    result = runner.run(bad)

    assert result.status == "FAILED"
    assert result.error == "ValidationError"
    assert "email" in (result.cause or "")
    assert path_of(result) == ["ValidateOrder", "RejectOrder"]


def test_out_of_stock_loops_through_backorder_until_its_bound_on_the_virtual_clock(runner: LocalRunner) -> None:
    began = time.perf_counter()

    result = runner.run(order("o-oos", skus=("OOS-LAMP",)))

    assert result.status == "FAILED"
    assert result.error == "OutOfStock"
    taken = path_of(result)
    assert taken.count("BackorderItem") == 3
    assert taken.count("CheckInventory") == 4
    assert taken[-1] == "OutOfStock"
    assert result.stop - result.start >= timedelta(hours=3)  # three one-hour waits, simulated
    assert time.perf_counter() - began < 20


def test_a_large_order_is_offloaded_and_still_routed_on_in_stock(runner: LocalRunner) -> None:
    # GIVEN an order with ~200 KB of attachments: under the execution input limit, but over the
    # offloading threshold, and the states after ValidateOrder would carry it with their results
    blob = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 200).decode()
    art = [{"name": f"art-{n}.png", "contentType": "image/png", "dataBase64": blob} for n in range(3)]
    big = order("o-large", attachments=art)
    assert 3 * 65_536 < len(json.dumps(big)) < LIMIT

    # WHEN it runs
    result = runner.run(big)

    # THEN it goes all the way: no state carried more than the limit, the attachments travelled as
    # S3 pointers, and the Choice still branched on inStock
    assert result.status == "SUCCEEDED", result.cause
    for event in result.history:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        for field in ("input", "output"):
            if event["type"].endswith(("StateEntered", "StateExited")) and field in details:
                assert len(details[field].encode()) <= LIMIT, event["type"]
    choice = next(e for e in result.history if e["type"] == "ChoiceStateEntered")
    routed = json.loads(choice["stateEnteredEventDetails"]["input"])
    assert routed["inStock"] is True
    assert "sfn_workers_s3" in json.dumps(routed["attachments"])
    assert "ShipItem" in path_of(result)
    s3 = runner.emulator.client("s3")
    bucket = runner.template.resources["PayloadBucket"].name  # type: ignore[union-attr]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= 1


def test_the_invoice_comes_from_the_sqs_fed_worker(runner: LocalRunner) -> None:
    result = runner.run(order("o-invoice", skus=("BOOK-1", "PEN-2", "MUG-3")))

    assert result.status == "SUCCEEDED", result.cause
    invoice = result.output["invoice"]
    assert invoice["invoiceId"].startswith("INV-")
    assert invoice["lines"] == 3
    delivery = next(iter(runner.services.deliveries.values()))
    assert delivery.batches, "the SQS event source mapping delivered nothing"
    run = trace(result.history)
    assert run.entered["GenerateInvoice"] == 1


@pytest.mark.parametrize(
    ("event", "status", "error"),
    [
        ("execution-happy.json", "SUCCEEDED", None),
        ("execution-invalid.json", "FAILED", "ValidationError"),
        ("execution-out-of-stock.json", "FAILED", "OutOfStock"),
        ("execution-large.json", "SUCCEEDED", None),
    ],
)
def test_the_sample_events_end_as_documented(runner: LocalRunner, event: str, status: str, error: str | None) -> None:
    path = EVENTS / event
    if not path.is_file():
        pytest.skip(f"{path} not written yet")

    # The large order is over the approval threshold: a reviewer approves it (docs/sample.md).
    approvals = {"ManualApproval": True} if event == "execution-large.json" else None
    result = runner.run(json.loads(path.read_text()), approvals=approvals)

    assert result.status == status, result.cause
    assert result.error == error


def test_run_returns_after_the_sqs_fed_function_has_finished(runner: LocalRunner, capsys: Any) -> None:
    # GIVEN the invoice worker answers its token over SQS before its own invocation ends
    capsys.readouterr()
    # WHEN the execution is run
    result = runner.run(order("o-quiet"))
    # THEN by the time run returns, that invocation has ended: its metrics document is already out
    # (and nothing of it can land in a later test's output)
    assert result.status == "SUCCEEDED", result.cause
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(d.get("CallbackSuccess") == 1 for d in documents)
