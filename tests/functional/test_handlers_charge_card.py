"""ChargeCard: one charge per orderId (Powertools idempotency on DynamoDB), retried provider calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.sample_handlers_support import (  # noqa: F401  (fixture)
    FakeLambdaContext,
    HandlerLoader,
    event,
    handlers_fixture,
    make_idempotency_table,
)

TABLE = "order-idempotency"


class CountingGateway:
    """A provider that records each capture; ``fail_first`` answers unavailable that many times."""

    def __init__(self, module: Any, fail_first: int = 0) -> None:
        self.module = module
        self.calls: list[dict[str, Any]] = []
        self.fail_first = fail_first

    def capture(self, **request: Any) -> str:
        self.calls.append(request)
        if len(self.calls) <= self.fail_first:
            raise self.module.GatewayUnavailable("provider answered 503")
        charge_id: str = self.module.SandboxGateway().capture(**request)
        return charge_id


@pytest.fixture
def charge(aws: str, handlers: HandlerLoader) -> Any:
    make_idempotency_table(TABLE)
    module = handlers.load("charge_card", IDEMPOTENCY_TABLE=TABLE)
    module._idempotent_charge.cache_clear()  # its DynamoDB client must reach this test's emulator
    yield module
    module._idempotent_charge.cache_clear()


def test_a_charge_is_captured_and_a_repeat_returns_the_same_receipt_without_charging_again(charge: Any) -> None:
    # GIVEN a provider that counts captures
    gateway = CountingGateway(charge)
    charge.gateway = gateway
    # WHEN ChargeCard runs twice for the same order (a Step Functions retry after States.Timeout)
    first = charge.handler(event("charge_card.json"), FakeLambdaContext())
    second = charge.handler(event("charge_card.json"), FakeLambdaContext())
    # THEN the card was charged once and both runs report that one charge
    assert len(gateway.calls) == 1
    assert gateway.calls[0]["idempotency_key"] == "order-1001"
    assert first == second
    assert first["status"] == "captured" and first["amountCents"] == 4348
    assert first["chargeId"].startswith("ch_")


def test_a_repeat_with_another_amount_is_refused_not_charged(charge: Any) -> None:
    gateway = CountingGateway(charge)
    charge.gateway = gateway
    charge.handler(event("charge_card.json"), FakeLambdaContext())
    changed = dict(event("charge_card.json"), amountCents=9999)
    with pytest.raises(Exception) as raised:
        charge.handler(changed, FakeLambdaContext())
    assert type(raised.value).__name__ == "IdempotencyValidationError"
    assert len(gateway.calls) == 1


def test_another_order_is_charged_separately(charge: Any) -> None:
    gateway = CountingGateway(charge)
    charge.gateway = gateway
    charge.handler(event("charge_card.json"), FakeLambdaContext())
    charge.handler(dict(event("charge_card.json"), orderId="order-2002"), FakeLambdaContext())
    assert [c["idempotency_key"] for c in gateway.calls] == ["order-1001", "order-2002"]


def test_an_unavailable_provider_is_retried_within_the_invocation(charge: Any) -> None:
    # GIVEN a provider that answers 503 twice, then captures
    gateway = CountingGateway(charge, fail_first=2)
    charge.gateway = gateway
    # WHEN ChargeCard runs THEN the retries get the charge through, in one invocation
    receipt = charge.handler(event("charge_card.json"), FakeLambdaContext())
    assert receipt["status"] == "captured"
    assert len(gateway.calls) == 3


def test_a_provider_that_stays_down_fails_the_task_and_leaves_no_charge_recorded(charge: Any) -> None:
    gateway = CountingGateway(charge, fail_first=100)
    charge.gateway = gateway
    with pytest.raises(charge.GatewayUnavailable):
        charge.handler(event("charge_card.json"), FakeLambdaContext())
    assert len(gateway.calls) == 4  # attempts=4: bounded, then the state machine's Retry takes over
    # AND a later run (the state's retry) may charge: the failed attempt did not poison the record
    charge.gateway = CountingGateway(charge)
    assert charge.handler(event("charge_card.json"), FakeLambdaContext())["status"] == "captured"


def test_a_declined_card_fails_as_CardDeclined(charge: Any) -> None:
    declined = dict(event("charge_card.json"), cardToken="tok_declined")
    with pytest.raises(Exception) as raised:
        charge.handler(declined, FakeLambdaContext())
    assert type(raised.value).__name__ == "CardDeclined"  # what ProcessPayment's Catch matches


def test_a_card_number_is_refused_as_input(charge: Any) -> None:
    from sfn_workers import ValidationError

    with pytest.raises(ValidationError, match="cardToken"):
        charge.handler(dict(event("charge_card.json"), cardToken="4242424242424242"), FakeLambdaContext())
