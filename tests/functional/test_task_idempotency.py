"""@task(idempotency=...): Powertools' idempotency on the validated input, replays answered with their own token.

Powertools' DynamoDBPersistenceLayer against moto's DynamoDB over HTTP; tokens on the strict local
SendTask* endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from pydantic import BaseModel

from sfn_workers import TaskContext, task
from sfn_workers.local.sfn_endpoint import MemoryTokens
from sfn_workers.testing import FakeLambdaContext

TABLE = "idempotency"


class Charge(BaseModel):
    orderId: str
    amount: int
    note: str = ""


@pytest.fixture
def store(aws: str) -> Iterator[DynamoDBPersistenceLayer]:
    """A Powertools persistence layer on a moto table (the ``aws`` fixture points boto3 at moto)."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield DynamoDBPersistenceLayer(table_name=TABLE, boto3_client=dynamodb)


def charging(calls: list[str]) -> Any:
    def charge(order: Charge, ctx: TaskContext) -> dict[str, Any]:
        calls.append(order.orderId)
        return {"receipt": f"r-{order.orderId}-{len(calls)}", "amount": order.amount}

    return charge


def test_a_replay_in_callback_mode_is_reported_with_its_own_new_token(
    store: DynamoDBPersistenceLayer, tokens: MemoryTokens
) -> None:
    # GIVEN an idempotent task keyed on the order id of the validated input
    calls: list[str] = []
    config = IdempotencyConfig(event_key_jmespath="orderId")
    handler = task(offload=False, idempotency=store, idempotency_config=config)(charging(calls))
    first, replay = tokens.issue(), tokens.issue()
    # WHEN the same order arrives twice, each time with a new token (a retried state)
    handler({"taskToken": first, "orderId": "o-1", "amount": 5}, FakeLambdaContext())
    handler({"taskToken": replay, "orderId": "o-1", "amount": 5, "note": "retried"}, FakeLambdaContext())
    # THEN the function ran once and both tokens got the same stored output
    assert calls == ["o-1"]
    assert tokens.outcome(first).json() == {"receipt": "r-o-1-1", "amount": 5}
    assert tokens.outcome(replay).json() == {"receipt": "r-o-1-1", "amount": 5}


def test_direct_mode_returns_the_stored_output_and_other_keys_run(store: DynamoDBPersistenceLayer) -> None:
    calls: list[str] = []
    handler = task(offload=False, idempotency=store, idempotency_config=IdempotencyConfig("orderId"))(charging(calls))
    assert handler({"orderId": "o-1", "amount": 5}, FakeLambdaContext()) == {"receipt": "r-o-1-1", "amount": 5}
    assert handler({"orderId": "o-1", "amount": 5}, FakeLambdaContext()) == {"receipt": "r-o-1-1", "amount": 5}
    assert handler({"orderId": "o-2", "amount": 7}, FakeLambdaContext()) == {"receipt": "r-o-2-2", "amount": 7}
    assert calls == ["o-1", "o-2"]


def test_the_key_is_the_validated_input_not_the_raw_event(store: DynamoDBPersistenceLayer) -> None:
    # GIVEN no jmespath: the key is the whole validated input, so the token and sfn_context are not in it
    calls: list[str] = []
    handler = task(offload=False, idempotency=store)(charging(calls))
    handler({"orderId": "o-3", "amount": "5", "sfn_context": {"execution": "e-1"}}, FakeLambdaContext())
    handler({"orderId": "o-3", "amount": 5, "sfn_context": {"execution": "e-2"}}, FakeLambdaContext())
    assert calls == ["o-3"]  # "5" and 5 validate to the same input


def test_an_idempotency_config_without_a_store_is_refused() -> None:
    from sfn_workers import ConfigurationError

    with pytest.raises(ConfigurationError, match="idempotency="):
        task(idempotency_config=IdempotencyConfig())(charging([]))


def test_powertools_idempotent_above_task_works_in_direct_mode(store: DynamoDBPersistenceLayer) -> None:
    from aws_lambda_powertools.utilities.idempotency import idempotent

    calls: list[str] = []
    handler = idempotent(persistence_store=store, config=IdempotencyConfig("orderId"))(
        task(offload=False)(charging(calls))
    )
    context: Any = FakeLambdaContext()
    assert handler({"orderId": "o-5", "amount": 1}, context) == {"receipt": "r-o-5-1", "amount": 1}
    assert handler({"orderId": "o-5", "amount": 1}, context) == {"receipt": "r-o-5-1", "amount": 1}
    assert calls == ["o-5"]
