"""Starting a local ``sfn-workers serve`` and a boto3 client for it, shared by the functional and
workflow tests (one place for the start/close and the test credentials)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sfn_workers.local.identity import REGION


@contextmanager
def served(template: Path | None = None, **options: Any) -> Iterator[Any]:
    """A server on a free port, closed (with a 5 s grace) when the block ends, even on failure."""
    from sfn_workers.local.api.server import start_server  # imported late: collection stays light

    srv = start_server(template, port=0, **options)
    try:
        yield srv
    finally:
        srv.close(grace=5)


def sfn_client(url: str, **config: Any) -> Any:
    """A Step Functions client for ``url`` with fake credentials; ``config`` goes to botocore."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


def until_closed(sfn: Any, execution_arn: str, timeout: float = 20.0, every: float = 0.05) -> dict[str, Any]:
    """DescribeExecution once the execution is no longer RUNNING (or as it is after ``timeout``)."""
    give_up = time.monotonic() + timeout
    while True:
        answer: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if answer["status"] != "RUNNING" or time.monotonic() > give_up:
            return answer
        time.sleep(every)
