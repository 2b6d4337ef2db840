"""TRANSIENT_AWS classifies real botocore errors: what is worth another try, what never is."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ProxyConnectionError,
    ReadTimeoutError,
)

from sfn_workers.retries import THROTTLING_CODES, TRANSIENT_AWS, RetryBudget, classify_aws, retry_after


def client_error(code: str, status: int = 400, headers: dict[str, str] | None = None) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {
                "RequestId": "r-1",
                "HostId": "",
                "HTTPStatusCode": status,
                "HTTPHeaders": headers or {},
                "RetryAttempts": 0,
            },
        },
        "Operation",
    )


LISTED_THROTTLING = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "BandwidthLimitExceeded",
    "TransactionInProgressException",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "LimitExceededException",
]


@pytest.mark.parametrize("code", LISTED_THROTTLING)
@pytest.mark.parametrize("status", [400, 429, 503])
def test_every_throttling_code_is_retried(code: str, status: int) -> None:
    exc = client_error(code, status)
    assert TRANSIENT_AWS(exc)
    assert classify_aws(exc) == "throttling"


def test_the_throttling_list_covers_botocores_own() -> None:
    # botocore's standard retry mode is the reference list; ours must not miss any of its codes.
    from botocore.retries.standard import ThrottledRetryableChecker

    assert set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= THROTTLING_CODES  # type: ignore[attr-defined]  # private, not in the stubs


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_any_5xx_is_retried(status: int) -> None:
    assert classify_aws(client_error("SomethingWeird", status)) == "server"


@pytest.mark.parametrize("code", ["InternalError", "InternalFailure", "ServiceUnavailable", "RequestTimeout"])
def test_transient_server_codes_are_retried_even_without_a_5xx(code: str) -> None:
    assert classify_aws(client_error(code, 400)) == "server"


@pytest.mark.parametrize(
    "code,status",
    [
        ("ValidationException", 400),
        ("ValidationError", 400),
        ("AccessDeniedException", 403),
        ("AccessDenied", 403),
        ("UnrecognizedClientException", 403),
        ("ResourceNotFoundException", 400),
        ("NoSuchKey", 404),
        ("ConditionalCheckFailedException", 400),
        ("InvalidParameterValue", 400),
        ("TaskTimedOut", 400),
    ],
)
def test_client_mistakes_are_not_retried(code: str, status: int) -> None:
    exc = client_error(code, status)
    assert not TRANSIENT_AWS(exc)
    assert classify_aws(exc) is None


@pytest.mark.parametrize(
    "exc,kind",
    [
        (ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), "timeout"),
        (ConnectTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), "timeout"),
        (EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), "connection"),
        (ConnectionClosedError(endpoint_url="https://s3.amazonaws.com"), "connection"),
        (ProxyConnectionError(proxy_url="http://proxy:3128"), "connection"),
    ],
)
def test_transport_errors_are_retried(exc: Exception, kind: str) -> None:
    assert TRANSIENT_AWS(exc)
    assert classify_aws(exc) == kind


@pytest.mark.parametrize(
    "exc",
    [
        NoCredentialsError(),
        ParamValidationError(report="missing Key"),
        ValueError("bad"),
        KeyError("k"),
        ConnectionResetError("not botocore: your own socket code decides"),
    ],
)
def test_other_errors_are_not_retried(exc: Exception) -> None:
    assert not TRANSIENT_AWS(exc)


def test_timeouts_cost_the_budget_more_than_other_retries() -> None:
    budget = RetryBudget()
    assert budget.cost_of(ReadTimeoutError(endpoint_url="x")) == 10
    assert budget.cost_of(client_error("ThrottlingException")) == 5
    assert budget.cost_of(client_error("X", 503)) == 5


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(client_error("SlowDown", 503, {"retry-after": "7"})) == 7.0
    assert retry_after(client_error("SlowDown", 503, {"Retry-After": "0.5"})) == 0.5
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after(client_error("SlowDown", 503, {"retry-after": when}), now=lambda: 1_000_000) == 30.0
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after(client_error("SlowDown", 503, {"retry-after": past})) == 0.0
    assert retry_after(client_error("SlowDown", 503, {"retry-after": "soon"})) is None
    assert retry_after(client_error("SlowDown", 503)) is None
    assert retry_after(ValueError("no response")) is None


@pytest.mark.parametrize(
    "header",
    ["Fri, 31 Dec 999999999999 23:59:59 GMT", "Fri, 31 Dec 99999 23:59:59 GMT", "nan", "Mon, 99 Foo 2026"],
)
def test_retry_after_values_no_clock_can_reach_are_ignored_not_raised(header: str) -> None:
    assert retry_after(client_error("SlowDown", 503, {"retry-after": header})) is None


def test_an_infinite_retry_after_is_reported_for_the_caller_to_cap() -> None:
    assert retry_after(client_error("SlowDown", 503, {"retry-after": "1e999"})) == float("inf")


def test_importing_retry_imports_neither_botocore_nor_asyncio() -> None:
    code = (
        "import sys\n"
        "from sfn_workers.retries import TRANSIENT_AWS\n"
        "assert not any(m.split('.')[0] in ('botocore', 'boto3') for m in sys.modules), 'botocore imported'\n"
        "assert TRANSIENT_AWS(ValueError()) is False\n"
        "assert 'botocore' not in sys.modules\n"
        "assert 'asyncio' not in sys.modules, 'asyncio costs ~40 ms of cold start: import it lazily'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
