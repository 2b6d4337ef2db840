"""ChargeCard: capture an order's total, exactly once per orderId.

Step Functions retries this task (Lambda throttling, ``States.Timeout``), Lambda may run an event
twice, and an operator may redrive a failed execution: each can call this handler again for an
order already charged. Powertools idempotency, keyed on ``orderId`` in the template's DynamoDB
table, returns the first charge's receipt to every repeat without calling the provider again; a
repeat with a different amount or currency for the same order is refused
(``IdempotencyValidationError``) rather than charged.

The payment provider is called through :func:`sfn_workers.retry`: short, jittered retries inside
the Lambda's remaining time, only on the provider's transient failures. A declined card is not
transient: it fails the task as ``CardDeclined``, which the state machine catches.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from typing import Any, Literal, Protocol

from order_models import CardToken, Cents, Currency, OrderId, Strict

from sfn_workers import TaskContext, TaskFailure, retry, task

IDEMPOTENCY_TABLE_ENV = "IDEMPOTENCY_TABLE"
#: A repeat within this window returns the stored receipt (the table's TTL removes it after).
IDEMPOTENCY_SECONDS = 7 * 24 * 3600


class ChargeRequest(Strict):
    orderId: OrderId
    amountCents: Cents
    currency: Currency
    cardToken: CardToken


class Receipt(Strict):
    orderId: OrderId
    chargeId: str
    amountCents: Cents
    currency: Currency
    status: Literal["captured"]


class GatewayUnavailable(Exception):
    """The payment provider timed out or answered 5xx/429: worth another try."""


class PaymentGateway(Protocol):
    def capture(self, *, idempotency_key: str, amount_cents: int, currency: str, card_token: str) -> str:
        """Capture the amount; returns the provider's charge id. Raises GatewayUnavailable or TaskFailure."""
        ...


class SandboxGateway:
    """Stand-in for a payment provider (replace with your provider's client).

    Deterministic: ``tok_declined`` is declined, any other token is captured, and the charge id is
    derived from the idempotency key, as a provider that honours idempotency keys would answer.
    """

    def capture(self, *, idempotency_key: str, amount_cents: int, currency: str, card_token: str) -> str:
        if card_token == "tok_declined":
            raise TaskFailure("CardDeclined", "the card issuer declined the charge")
        digest = hashlib.sha256(f"{idempotency_key}:{amount_cents}:{currency}".encode()).hexdigest()
        return f"ch_{digest[:24]}"


#: The provider this module charges through; tests replace it.
gateway: PaymentGateway = SandboxGateway()


@retry(on=GatewayUnavailable, attempts=4, base=0.2, cap=2.0)
def _capture(request: ChargeRequest) -> str:
    # The provider gets the orderId as its own idempotency key: a second line of defence if the
    # idempotency record were lost.
    return gateway.capture(
        idempotency_key=request.orderId,
        amount_cents=request.amountCents,
        currency=request.currency,
        card_token=request.cardToken,
    )


def _charge(charge: ChargeRequest) -> Receipt:
    charge_id = _capture(charge)
    return Receipt(
        orderId=charge.orderId,
        chargeId=charge_id,
        amountCents=charge.amountCents,
        currency=charge.currency,
        status="captured",
    )


@functools.cache
def _idempotent_charge() -> tuple[Callable[..., Receipt], Any]:
    """The charge wrapped in Powertools idempotency, built on first use (creates a DynamoDB client)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

    persistence = DynamoDBPersistenceLayer(table_name=os.environ[IDEMPOTENCY_TABLE_ENV])
    config = IdempotencyConfig(
        event_key_jmespath="orderId",
        payload_validation_jmespath="[amountCents, currency]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    wrapped = idempotent_function(
        _charge,
        data_keyword_argument="charge",
        persistence_store=persistence,
        config=config,
        # An instance, not the class: with postponed annotations Powertools cannot read the return type.
        output_serializer=PydanticSerializer(model=Receipt),
    )
    return wrapped, config


@task
def handler(request: ChargeRequest, ctx: TaskContext) -> Receipt:
    charge, config = _idempotent_charge()
    if ctx.lambda_context is not None:
        # Lets an interrupted attempt's "in progress" record expire with this invocation's timeout.
        config.register_lambda_context(ctx.lambda_context)
    receipt = charge(charge=request)
    ctx.logger.info("charge captured", extra={"orderId": receipt.orderId, "chargeId": receipt.chargeId})
    return receipt
