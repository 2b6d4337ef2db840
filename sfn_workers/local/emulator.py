"""The embedded AWS: moto's server for S3, SQS, SNS and DynamoDB, and the SendTask* endpoint.

Both servers are started once per process, on 127.0.0.1 and random ports, and stay up until the
process exits: boto3 clients that handlers create (and cache across warm invocations, as they
should) keep working from one execution to the next. :class:`Emulator` is a runner's view of them:
it points ``AWS_ENDPOINT_URL_*`` at them with fake credentials while the runner is open, and
creates the template's resources (payload bucket, tables, topics, queues) so the embedded default
needs no set-up.

The SendTask* endpoint serves every runner of the process through a :class:`TokenRouter`, which
hands each call to the token broker that issued the token.

Each runner chooses a transport (:data:`TRANSPORTS`): ``in-process`` (the default) activates the
botocore hook of :mod:`sfn_workers.local.inprocess`, so calls to these servers are answered in the
calling thread without sockets; ``http`` leaves them on the servers' real ports. Both reach the same
state, and the servers keep listening either way for other processes.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from sfn_workers.local.identity import ACCOUNT_ID, REGION
from sfn_workers.local.sam import Resource, Template, TemplateError
from sfn_workers.local.token_backend import ApiError, TaskTokenBackend

__all__ = ["TRANSPORTS", "Emulator", "TokenRouter", "client_of", "moto_url", "sfn_endpoint"]

EMULATED = ("S3", "SQS", "SNS", "DYNAMODB")
#: How boto3's calls reach the embedded emulator: answered in this process by the servers' own
#: request handlers (no sockets; the default of ``run``/``run_execution``), or over HTTP (what
#: another process needs, and what ``sfn-workers serve`` uses).
TRANSPORTS = ("in-process", "http")

_lock = threading.Lock()
_moto: Any = None
_moto_url: str | None = None
_endpoint: Any = None
_router: TokenRouter | None = None


def moto_url() -> str:
    """The process's moto server (started on first use)."""
    global _moto, _moto_url
    with _lock:
        if _moto_url is None:
            import logging

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the user's terminal
            from sfn_workers.local import sns_guard

            sns_guard.install()  # no SNS delivery to the network unless allowed
            _moto = _MotoServer()
            _moto_url = _moto.start()
            atexit.register(_stop_servers)
            from sfn_workers.local.inprocess import transport, wsgi_answer

            transport.route(_moto_url, wsgi_answer(_moto.app))
        return _moto_url


class _MotoServer:
    """moto's server app on werkzeug's threaded server, as ``ThreadedMotoServer`` runs it, except
    that the app remembers which backend serves which Host header: moto lists its package
    directory twice per request to find out (about a third of a small request's time)."""

    def __init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def app(self) -> Any:
        """The WSGI app the server runs (the in-process transport calls it directly)."""
        return self._server.app

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class Dispatcher(DomainDispatcherApplication):
            def __init__(self) -> None:
                super().__init__(create_backend_app)
                self._hosts: dict[str | None, Any] = {}

            def get_backend_for_host(self, host: str | None) -> Any:
                if host not in self._hosts:
                    self._hosts[host] = super().get_backend_for_host(host)
                return self._hosts[host]

        self._server = make_server("127.0.0.1", 0, Dispatcher(), True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class TokenRouter:
    """A TaskTokenBackend over several brokers: each call goes to the one that issued the token."""

    def __init__(self) -> None:
        self._backends: list[TaskTokenBackend] = []
        self._lock = threading.Lock()

    def add(self, backend: TaskTokenBackend) -> None:
        with self._lock:
            self._backends.append(backend)

    def remove(self, backend: TaskTokenBackend) -> None:
        with self._lock:
            if backend in self._backends:
                self._backends.remove(backend)

    def _route(self, call: str, token: str, *args: Any) -> None:
        with self._lock:
            backends = list(self._backends)
        for backend in reversed(backends):
            try:
                getattr(backend, call)(token, *args)
                return
            except ApiError as exc:
                if exc.code != "InvalidToken":
                    raise
        raise ApiError("InvalidToken", "Invalid token")

    def send_task_success(self, token: str, output: str) -> None:
        self._route("send_task_success", token, output)

    def send_task_failure(self, token: str, error: str | None, cause: str | None) -> None:
        self._route("send_task_failure", token, error, cause)

    def send_task_heartbeat(self, token: str) -> None:
        self._route("send_task_heartbeat", token)


def sfn_endpoint() -> tuple[str, TokenRouter]:
    """The process's SendTask* endpoint (started on first use) and the router behind it."""
    global _endpoint, _router
    with _lock:
        if _endpoint is None:
            from sfn_workers.local.sfn_endpoint import SfnEndpoint

            router = TokenRouter()
            endpoint = SfnEndpoint(router, journal=False)
            endpoint.start()
            _endpoint, _router = endpoint, router
            atexit.register(_stop_servers)
            from sfn_workers.local.inprocess import transport

            transport.route(endpoint.url, _sfn_answer(endpoint))
        assert _router is not None
        return str(_endpoint.url), _router


def _sfn_answer(endpoint: Any) -> Any:
    """The in-process transport's answer for the SendTask* endpoint (AWS JSON 1.0, as over HTTP)."""
    import uuid

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        from botocore.exceptions import ConnectionClosedError

        from sfn_workers.local.inprocess import header_text, request_body

        target = header_text(request.headers.get("X-Amz-Target", ""))
        status, body = endpoint.answer(target, request_body(request))
        if status < 0:
            raise ConnectionClosedError(endpoint_url=request.url)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
        if status >= 400 and "__type" in body:
            headers["x-amzn-ErrorType"] = str(body["__type"])
        return status, headers, json.dumps(body).encode("utf-8")

    return answer


_clients: dict[tuple[str, str, int], Any] = {}
_session: Any = None


def client_of(service: str, url: str, *, attempts: int = 3) -> Any:
    """A boto3 client of the emulator at ``url``, made once per process (a client costs
    milliseconds to create; like a warm Lambda, the runner keeps its own)."""
    key = (service, url, attempts)
    client = _clients.get(key)
    if client is None:
        import boto3
        from botocore.config import Config

        with _lock:
            client = _clients.get(key)
            if client is None:
                global _session
                if _session is None:
                    _session = boto3.session.Session()
                client = _clients[key] = _session.client(
                    service,
                    endpoint_url=url,
                    region_name=REGION,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"mode": "standard", "max_attempts": attempts}),
                )
    return client


def _stop_servers() -> None:
    global _moto, _moto_url, _endpoint, _router
    with _lock:
        if _endpoint is not None:
            _endpoint.stop(grace=0.5)
        if _moto is not None:
            _moto.stop()
        _moto = _moto_url = _endpoint = _router = None


class Emulator:
    """One runner's use of the embedded servers: environment, resources, a reset."""

    def __init__(self, *, endpoint_url: str | None = None, transport: str = "in-process") -> None:
        """``endpoint_url``: use this AWS emulator (LocalStack, a moto you run) instead of the embedded
        one (always over HTTP). ``transport``: one of :data:`TRANSPORTS`."""
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self.transport = transport
        self.external = endpoint_url is not None
        self.url = endpoint_url or moto_url()
        self.sfn_url, self.router = sfn_endpoint()
        self._saved: dict[str, str | None] | None = None

    def environment(self) -> dict[str, str]:
        """What boto3 needs to reach the emulator and nothing else: endpoints, fake credentials, region."""
        env = {f"AWS_ENDPOINT_URL_{service}": self.url for service in EMULATED}
        env.update(
            {
                "AWS_ENDPOINT_URL": self.url,
                "AWS_ENDPOINT_URL_SFN": self.sfn_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        return env

    def apply(self, overrides: Mapping[str, str] | None = None) -> None:
        """Point this process's boto3 at the emulator (undone by :meth:`restore`, which puts back every
        variable as it was). ``overrides`` replace some of :meth:`environment`'s values, e.g. serve's
        own URL as ``AWS_ENDPOINT_URL_SFN``."""
        if self._saved is not None:
            return
        env = {**self.environment(), **(overrides or {})}
        self._saved = {key: os.environ.get(key) for key in [*env, "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(env)
        if self.transport == "in-process":
            from sfn_workers.local import inprocess

            inprocess.transport.acquire()

    def restore(self) -> None:
        if self._saved is None:
            return
        if self.transport == "in-process":
            from sfn_workers.local import inprocess

            inprocess.transport.release()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = None

    @contextmanager
    def applied(self) -> Iterator[Emulator]:
        self.apply()
        try:
            yield self
        finally:
            self.restore()

    def reset(self) -> None:
        """Forget every bucket, queue, topic and table (moto's reset; not for an external emulator)."""
        if self.external:
            return
        # What moto's POST /moto-api/reset runs; the server lives in this process.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    def client(self, service: str) -> Any:
        """A boto3 client of the emulator (one per process)."""
        return client_of(service, self.url)

    # -- resources --------------------------------------------------------------------------------

    def provision(self, template: Template) -> None:
        """Create the template's buckets, tables, queues (dead-letter queues first), topics, subscriptions."""
        resources = list(template.resources.values())
        for resource in resources:
            if resource.type == "AWS::S3::Bucket":
                self._bucket(resource)
            elif resource.type in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
                self._table(resource)
        queues = [r for r in resources if r.type == "AWS::SQS::Queue"]
        for resource in sorted(queues, key=lambda r: "RedrivePolicy" in r.properties):
            self._queue(resource)
        for resource in resources:
            if resource.type == "AWS::SNS::Topic":
                self._topic(resource)
        for resource in resources:
            if resource.type == "AWS::SNS::Subscription":
                props = resource.properties
                self._subscribe(str(props.get("TopicArn")), props)

    def _bucket(self, resource: Resource) -> None:
        s3 = self.client("s3")
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=resource.name)

    def _table(self, resource: Resource) -> None:
        props = resource.properties
        if resource.type == "AWS::Serverless::SimpleTable":
            key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            kind = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
            spec: dict[str, Any] = {
                "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
            }
        else:
            spec = {"KeySchema": props["KeySchema"], "AttributeDefinitions": props["AttributeDefinitions"]}
            for option in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if option in props:
                    spec[option] = [_without(index, "ContributorInsightsSpecification") for index in props[option]]
        throughput = props.get("ProvisionedThroughput")
        if throughput:
            spec["BillingMode"] = "PROVISIONED"
            spec["ProvisionedThroughput"] = throughput
        else:
            spec["BillingMode"] = "PAY_PER_REQUEST"
        dynamodb = self.client("dynamodb")
        try:
            dynamodb.create_table(TableName=resource.name, **spec)
        except dynamodb.exceptions.ResourceInUseException:
            return
        ttl = props.get("TimeToLiveSpecification")
        if isinstance(ttl, Mapping) and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=resource.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _queue(self, resource: Resource) -> None:
        props = resource.properties
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in props:
                value = props[key]
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        redrive = props.get("RedrivePolicy")
        if redrive:
            attributes["RedrivePolicy"] = redrive if isinstance(redrive, str) else json.dumps(redrive)
        self.client("sqs").create_queue(QueueName=resource.name, Attributes=attributes)

    def _topic(self, resource: Resource) -> None:
        props = resource.properties
        attributes = {"FifoTopic": "true"} if props.get("FifoTopic") else {}
        arn = self.client("sns").create_topic(Name=resource.name, Attributes=attributes)["TopicArn"]
        for subscription in props.get("Subscription") or []:
            self._subscribe(arn, subscription)

    def _subscribe(self, topic_arn: str, spec: Mapping[str, Any]) -> None:
        protocol = str(spec.get("Protocol", "")).lower()
        if protocol not in ("sqs", "http", "https"):
            return  # email, sms, lambda...: nothing to deliver to locally
        endpoint = str(spec.get("Endpoint"))
        if protocol != "sqs" and not self.external:
            from sfn_workers.local import sns_guard

            if not sns_guard.remote_delivery_allowed() and not sns_guard.is_loopback_url(endpoint):
                raise TemplateError(
                    f"SNS subscription of {topic_arn} to {endpoint}: the local emulator delivers http/https "
                    "notifications to loopback URLs only (sfn-workers serve --allow-remote-sns lifts this)"
                )
        attributes = {}
        if spec.get("RawMessageDelivery"):
            attributes["RawMessageDelivery"] = "true"
        if spec.get("FilterPolicy"):
            policy = spec["FilterPolicy"]
            attributes["FilterPolicy"] = policy if isinstance(policy, str) else json.dumps(policy)
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint, Attributes=attributes)


def _without(spec: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in keys}


def queue_url(emulator_url: str, name: str) -> str:
    """The URL of queue ``name`` on the emulator (any host works: moto reads the path)."""
    return f"{emulator_url}/{ACCOUNT_ID}/{name}"
