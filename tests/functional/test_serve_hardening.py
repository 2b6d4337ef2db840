"""``sfn-workers serve`` under hostile or runaway clients: bounded, responsive, nothing lost.

Each test states its own hard limits: a wall-clock alarm that fails it (``bounded``), socket and
wait timeouts on every blocking call, and a ceiling on the memory Python allocates meanwhile
(tracemalloc's peak). None asserts how fast anything is.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import tracemalloc
import uuid
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from tests.serve_support import served, sfn_client

ROLE = "arn:aws:iam::123456789012:role/local"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@contextlib.contextmanager
def bounded(seconds: int, mib: int) -> Iterator[None]:
    """Fail the test if it runs longer than ``seconds`` or Python allocates more than ``mib`` at a peak."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the test's hard limit of {seconds} s passed")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    tracemalloc.start()
    try:
        yield
        _current, peak = tracemalloc.get_traced_memory()
        assert peak < mib * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB over the limit of {mib} MiB"
    finally:
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    options: dict[str, Any] = getattr(request, "param", {})
    with served(**options) as srv:
        yield srv


def _client(url: str) -> Any:
    return sfn_client(url, inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=30, connect_timeout=5)


def _post(url: str, action: str, body: str | bytes, host: str | None = None) -> tuple[int, dict[str, Any]]:
    """One raw AWS JSON 1.0 request (what a browser or a hand-written client could send)."""
    address = url.removeprefix("http://")
    name, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(name, int(port), timeout=10)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AWSStepFunctions.{action}"}
    if host is not None:
        conn.putrequest("POST", "/", skip_host=True)
        conn.putheader("Host", host)
        data = body.encode() if isinstance(body, str) else body
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            conn.putheader(key, value)
        conn.endheaders(data)
    else:
        conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    status, payload = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return status, payload


def _machine(sfn: Any, definition: str = PASS, kind: str = "STANDARD") -> str:
    name = f"sm-{uuid.uuid4().hex[:10]}"
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE, type=kind)["stateMachineArn"])


# -- connections ---------------------------------------------------------------------------------


def test_a_burst_of_connections_is_queued_by_the_listen_backlog_not_refused() -> None:
    from sfn_workers.local.api.http import ApiHttpServer

    # GIVEN a server that is listening but not yet accepting (its backlog is all that holds connections)
    http = ApiHttpServer(lambda target, raw: (200, {}))
    sockets: list[socket.socket] = []
    try:
        with bounded(seconds=60, mib=50):
            # WHEN 100 clients connect at once
            for _ in range(100):
                sock = socket.socket()
                sock.settimeout(3)  # a connection beyond the backlog is dropped and would time out here
                sock.connect(("127.0.0.1", http.port))
                sockets.append(sock)
            # THEN every one is established, and answered once the server serves
            http.start()
            sockets[-1].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sockets[-1].recv(100).startswith(b"HTTP/1.1 404")
    finally:
        for sock in sockets:
            sock.close()
        http.stop(grace=0)


def test_a_client_trickling_a_request_is_disconnected_at_the_request_deadline() -> None:
    from sfn_workers.local.api.http import ApiHttpServer

    http = ApiHttpServer(lambda target, raw: (200, {}), request_timeout=1.0)
    http.start()
    try:
        with bounded(seconds=30, mib=50), socket.create_connection(("127.0.0.1", http.port), timeout=5) as sock:
            # GIVEN a client that sends its request one header byte at a time, each well within the idle timeout
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            closed = False
            for _ in range(200):
                try:
                    sock.sendall(b"X")
                    with contextlib.suppress(TimeoutError):
                        sock.settimeout(0.2)
                        if sock.recv(1) == b"":
                            closed = True
                            break
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            # THEN the server closed the connection (the request never arrived whole)
            assert closed
            # AND it still answers other clients
            with socket.create_connection(("127.0.0.1", http.port), timeout=5) as other:
                other.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert other.recv(100).startswith(b"HTTP/1.1 404")
    finally:
        http.stop(grace=0)


# -- DNS rebinding and SNS delivery --------------------------------------------------------------


def test_a_request_naming_another_host_is_refused_in_aws_error_shape(server: Any) -> None:
    with bounded(seconds=30, mib=100):
        # WHEN a page served from another domain (DNS rebinding) calls the API
        status, body = _post(server.url, "ListStateMachines", "{}", host="attacker.example:8083")
        # THEN it is refused as AWS refuses a request, and nothing is listed
        assert status == 403
        assert body["__type"] == "AccessDeniedException"
        assert "attacker.example" in body["message"]
        # AND clients naming this machine are served
        port = server.url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert _post(server.url, "ListStateMachines", "{}", host=host)[0] == 200


@pytest.mark.parametrize("server", [{"allow_hosts": ["sfn.test"]}], indirect=True)
def test_allow_host_widens_the_host_check(server: Any) -> None:
    with bounded(seconds=30, mib=100):
        assert _post(server.url, "ListStateMachines", "{}", host="sfn.test")[0] == 200
        assert _post(server.url, "ListStateMachines", "{}", host="other.test")[0] == 403


def test_sns_http_subscriptions_to_other_machines_are_refused(server: Any) -> None:
    from botocore.exceptions import ClientError

    from sfn_workers.local.emulator import client_of, moto_url

    sns = client_of("sns", moto_url())
    with bounded(seconds=30, mib=100):
        topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
        # WHEN something subscribes a URL on another machine
        with pytest.raises(ClientError) as refused:
            sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="https://203.0.113.7/hook")
        # THEN SNS refuses it, saying why
        assert refused.value.response["Error"]["Code"] == "InvalidParameter"
        assert "loopback" in refused.value.response["Error"]["Message"]
        # AND a loopback URL is accepted
        assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://127.0.0.1:9/hook")["SubscriptionArn"]


@pytest.mark.parametrize("server", [{"allow_remote_sns": True}], indirect=True)
def test_allow_remote_sns_lifts_the_sns_guard_while_the_server_runs(server: Any) -> None:
    from sfn_workers.local import sns_guard
    from sfn_workers.local.emulator import client_of, moto_url

    sns = client_of("sns", moto_url())
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="https://203.0.113.7/hook")["SubscriptionArn"]
    server.close(grace=1)
    assert not sns_guard.remote_delivery_allowed()


# -- quotas and input ----------------------------------------------------------------------------


@pytest.mark.parametrize("server", [{"max_executions": 1, "max_queued": 2}], indirect=True)
def test_start_execution_beyond_running_and_queued_quotas_is_throttled(server: Any) -> None:
    from botocore.exceptions import ClientError

    sfn = _client(server.url)
    slow = _machine(sfn, json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}))
    with bounded(seconds=60, mib=100):
        # GIVEN one execution running and two waiting for its slot
        started = [sfn.start_execution(stateMachineArn=slow)["executionArn"] for _ in range(3)]
        # WHEN one more starts
        with pytest.raises(ClientError) as throttled:
            sfn.start_execution(stateMachineArn=slow)
        # THEN it is refused with AWS's code and a message naming the limits
        error = throttled.value.response["Error"]
        assert error["Code"] == "ExecutionLimitExceeded"
        assert "--max-executions" in error["Message"]
        # AND the accepted ones are all there, RUNNING
        assert {sfn.describe_execution(executionArn=arn)["status"] for arn in started} == {"RUNNING"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"x": NaN}', "NaN"),
        ('{"x": -Infinity}', "Infinity"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    ],
    ids=["nan", "infinity", "deep"],
)
def test_input_that_is_not_json_as_aws_reads_it_is_invalid_execution_input(server: Any, text: str, reason: str) -> None:
    sfn = _client(server.url)
    machine = _machine(sfn)
    with bounded(seconds=30, mib=200):
        status, body = _post(server.url, "StartExecution", json.dumps({"stateMachineArn": machine, "input": text}))
        assert (status, body["__type"]) == (400, "InvalidExecutionInput")
        assert reason in body["message"]
        assert sfn.list_executions(stateMachineArn=machine)["executions"] == []


def test_a_request_body_nested_too_deep_is_a_serialization_error_not_a_crash(server: Any) -> None:
    with bounded(seconds=30, mib=200):
        status, body = _post(server.url, "ListStateMachines", '{"a":' * 50_000 + "1" + "}" * 50_000)
        assert (status, body["__type"]) == (400, "SerializationException")
        assert _post(server.url, "ListStateMachines", "{}")[0] == 200


@pytest.mark.parametrize("server", [{"virtual_time": True}], indirect=True)
def test_start_sync_execution_of_an_endless_express_machine_answers_at_the_five_minute_limit(server: Any) -> None:
    sfn = _client(server.url)
    # GIVEN an Express machine that would wait an hour (on the virtual clock: no real time)
    forever = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    machine = _machine(sfn, forever, kind="EXPRESS")
    with bounded(seconds=60, mib=100):
        # WHEN it is started synchronously
        answer = sfn.start_sync_execution(stateMachineArn=machine, input="{}")
        # THEN the call answers when Express's 5 minutes have passed, as AWS reports it
        assert answer["status"] == "TIMED_OUT"
        assert answer["error"] == "States.Timeout"
        assert (answer["stopDate"] - answer["startDate"]).total_seconds() >= 300


def test_serve_points_in_process_handlers_at_itself_and_restores_the_environment_when_it_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from sfn_workers.local.api.server import start_server

    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", "http://user-value.invalid")
    monkeypatch.setenv("AWS_PROFILE", "my-profile")
    with bounded(seconds=60, mib=100):
        srv = start_server(None, port=0)
        try:
            assert os.environ["AWS_ENDPOINT_URL_SFN"] == srv.url
            assert "AWS_PROFILE" not in os.environ
        finally:
            srv.close(grace=1)
    assert os.environ["AWS_ENDPOINT_URL_SFN"] == "http://user-value.invalid"
    assert os.environ["AWS_PROFILE"] == "my-profile"
