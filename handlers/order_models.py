"""Pydantic models shared by the sample order workflow's handlers.

The order that starts an execution is validated once, by ValidateOrder; later states pass the parts
they need to their tasks, and each task validates its own input again against the models here, so
a change in the state machine that breaks a task's input fails loudly (``ValidationError``) instead
of charging or shipping the wrong thing.

Amounts are integer cents: no float rounding on money.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Currency = Literal["EUR", "USD", "GBP"]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
# A payment-provider token, never a card number: card data must not travel through Step Functions'
# execution history.
CardToken = Annotated[str, StringConstraints(pattern=r"^tok_[A-Za-z0-9_]{1,64}$")]


class Strict(BaseModel):
    """Unknown fields are refused: a typo in an event is an error, not silently dropped data."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(Strict):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1_000)]
    unitPriceCents: Cents


class Address(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    postalCode: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Customer(Strict):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Card(Strict):
    token: CardToken


class Attachment(Strict):
    """A customer-supplied file (engraving artwork, gift card design): the part of an order that
    can be large, and so the part that S3 offloading moves out of the state."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    contentType: Annotated[str, StringConstraints(min_length=3, max_length=100)]
    dataBase64: Annotated[str, StringConstraints(max_length=4_000_000)]


class Backorder(Strict):
    """How many times the workflow has waited for stock (the state machine counts, bounded)."""

    attempts: Annotated[int, Field(ge=0)] = 0


class ShipmentRef(Strict):
    sku: Sku
    quantity: Annotated[int, Field(ge=1)]
    trackingId: str
