"""Cold-start budget: what ``import sfn_workers`` and a small direct call must not pull in.

Run in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, sys
    import sfn_workers
    after_import = sorted(m for m in ("boto3", "botocore", "aws_xray_sdk", "moto", "sfn_workers.local")
                          if m in sys.modules)

    from pydantic import BaseModel
    from sfn_workers import task
    from sfn_workers._aws import default_clients

    class Order(BaseModel):
        orderId: str
        quantity: int

    @task
    def handler(order: Order) -> dict:
        return {"orderId": order.orderId, "ok": True}

    result = handler({"orderId": "o-1", "quantity": 2}, None)
    # Powertools itself imports the bare botocore package (1 ms) to tag its user agent; the costly
    # parts (sessions, clients, service models) and boto3 must stay out.
    after_call = sorted(m for m in ("boto3", "botocore.session", "botocore.client", "aws_xray_sdk",
                                    "sfn_workers.callbacks") if m in sys.modules)
    print(json.dumps({"after_import": after_import, "after_call": after_call,
                      "clients": list(default_clients().created()), "result": result}))
    """
)


def run_probe(extra_env: dict[str, str] | None = None) -> dict[str, object]:
    import os

    env = {**os.environ, "SFN_WORKERS_BUCKET": "payloads", **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_pulls_in_neither_boto3_nor_xray_nor_the_local_runner() -> None:
    report = run_probe()
    assert report["after_import"] == []


def test_small_direct_call_creates_no_boto3_client() -> None:
    report = run_probe()
    assert report["result"] == {"orderId": "o-1", "ok": True}
    assert report["clients"] == []
    assert report["after_call"] == []


def test_even_with_tracing_requested_outside_lambda_xray_is_not_imported() -> None:
    report = run_probe({"POWERTOOLS_TRACE_DISABLED": "false"})
    assert report["after_call"] == []
