"""Task integrations other than Lambda, one module each under :mod:`sfn_workers.local.integrations`.

:class:`Services` parses a Task's Resource and hands the call to its integration:

========================  ==================================================================
``sns:publish``           :mod:`~sfn_workers.local.integrations.sns` (optimised)
``sqs:sendMessage``       :mod:`~sfn_workers.local.integrations.sqs` (optimised; event source mappings)
``dynamodb:*Item``        :mod:`~sfn_workers.local.integrations.dynamodb` (optimised)
``events:putEvents``      :mod:`~sfn_workers.local.integrations.events` (EventBridge, rules deliver)
``http:invoke``           :mod:`~sfn_workers.local.integrations.http` (a real HTTP request)
``states:startExecution`` :mod:`~sfn_workers.local.integrations.states` (nested executions)
``aws-sdk:<svc>:<api>``   :mod:`~sfn_workers.local.integrations.aws_sdk` (any API the emulator serves)
========================  ==================================================================

Every AWS call goes through boto3 to the embedded emulator. Anything else fails with one line
naming the integration and how to mock it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.asl.integrations import TaskError
from sfn_workers.local.emulator import client_of
from sfn_workers.local.identity import ACCOUNT_ID, REGION
from sfn_workers.local.integrations.aws_sdk import AwsSdk
from sfn_workers.local.integrations.common import Call, Hold, Integration, parse_resource, runtime_error
from sfn_workers.local.integrations.dynamodb import DynamoDb
from sfn_workers.local.integrations.events import Deliver, EventRules, Events
from sfn_workers.local.integrations.http_invoke import HttpInvoke
from sfn_workers.local.integrations.sdk_model import error_name
from sfn_workers.local.integrations.sns import Sns
from sfn_workers.local.integrations.sqs import Sqs
from sfn_workers.local.integrations.sqs_delivery import SqsDelivery
from sfn_workers.local.integrations.states import Machines, NestedExecutions, RunnerMachines
from sfn_workers.local.lambdas import LocalFunction
from sfn_workers.local.sam import EventSourceMapping, Template

__all__ = ["Services", "SqsDelivery", "error_name_for", "parse_resource", "unsupported"]

MOCK_HINT = "mock it with a mock config file (sfn-workers run --mock-config FILE --test-case NAME)"


def error_name_for(prefix: str, exc: BaseException) -> str:
    """``SNS.NotFoundException`` for moto's/AWS's ``NotFound``: AWS adds the Exception suffix."""
    return error_name(prefix, "", exc)


def unsupported(resource: str) -> TaskError:
    """The one-line failure of a Task whose integration the local runner does not emulate."""
    return runtime_error(f"the local runner does not emulate {resource}; {MOCK_HINT}")


class Services:
    """Runs the non-Lambda Task resources of one runner against the emulator."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.deliveries: dict[str, SqsDelivery] = {}  # queue name -> its event source mapping
        self.rules = EventRules()
        self.nested: NestedExecutions | None = None
        self._function_for: Callable[[str], LocalFunction | None] = lambda reference: None
        self.integrations: dict[str, Integration] = {
            "sns": Sns(self.client),
            "sqs": Sqs(self.client, self.deliveries),
            "dynamodb": DynamoDb(self.client),
            "events": Events(self.client, self.rules),
            "http": HttpInvoke(),
            "aws-sdk": AwsSdk(self.client),
        }

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (one per process and emulator, as a warm Lambda keeps its own)."""
        return client_of(service, self.endpoint_url, attempts=2)

    def add(self, service: str, integration: Integration) -> None:
        """Serve ``arn:aws:states:::<service>:...`` with ``integration`` (e.g. nested executions)."""
        self.integrations[service] = integration

    def connect(self, runner: Any, machines: Machines | None = None) -> None:
        """Serve nested executions of ``machines`` (default: ``runner``'s state machines), and deliver
        events to ``runner``'s functions."""
        self.nested = NestedExecutions(machines or RunnerMachines(runner))
        self.add("states", self.nested)
        self._function_for = runner.function_for

    def provision(self, template: Template) -> None:
        """Create the template's EventBridge buses and rules (after the emulator's own resources)."""
        self.rules.provision(template.resources, self.client, self._local_target)

    def _local_target(self, arn: str) -> Deliver | None:
        """How this process delivers an event to a rule's target that moto cannot reach."""
        function = self._function_for(arn) if arn.startswith("arn:aws:lambda:") else None
        if function is not None:
            return lambda event: function.invoke(event)
        if arn.startswith("arn:aws:sns:"):
            sns = self.client("sns")
            return lambda event: sns.publish(TopicArn=arn, Message=json.dumps(event))
        nested = self.nested
        if arn.startswith("arn:aws:states:") and nested is not None:
            return lambda event: nested.start(arn, event)
        return None

    def add_delivery(
        self,
        queue_name: str,
        function: LocalFunction,
        mapping: EventSourceMapping,
        *,
        retry_visibility: int = 0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> SqsDelivery:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        delivery = SqsDelivery(
            sqs,
            url,
            f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}",
            function,
            mapping,
            retry_visibility=retry_visibility,
            on_error=on_error,
        )
        self.deliveries[queue_name] = delivery
        delivery.start()
        return delivery

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no SQS event source mapping is delivering a batch (see SqsDelivery.wait_idle)."""
        return all(delivery.wait_idle(timeout) for delivery in list(self.deliveries.values()))

    def close(self) -> None:
        for delivery in self.deliveries.values():
            delivery.stop()
        self.deliveries.clear()

    def call(
        self,
        resource: str,
        parameters: Any,
        hold: Callable[[], Hold] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run ``resource`` with ``parameters``; the result, or TaskError with AWS's error name.

        ``hold`` (the execution clock's ``hold``) is taken for work the state starts elsewhere (an
        SQS message a mapped function will receive) and released when it has happened.
        """
        try:
            service, action, pattern = parse_resource(resource)
        except ValueError as exc:
            raise runtime_error(str(exc)) from exc
        if parameters is not None and not isinstance(parameters, Mapping):
            raise runtime_error(f"{resource}: Parameters must be a JSON object")
        key = "aws-sdk" if service.startswith("aws-sdk:") else service
        integration = self.integrations.get(key)
        if integration is None:
            raise unsupported(resource)
        params = dict(parameters) if isinstance(parameters, Mapping) else {}
        return integration(Call(resource, service, action, pattern, params, context or {}, hold))
