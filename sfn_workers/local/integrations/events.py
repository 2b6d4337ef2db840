"""``arn:aws:states:::events:putEvents[.waitForTaskToken]``: EventBridge on the embedded emulator.

As AWS's optimised integration does, each entry's ``Detail`` object is sent as JSON text, the
execution's and state machine's ARNs are appended to its ``Resources``, and a response with a
``FailedEntryCount`` above 0 fails the Task with ``EventBridge.FailedEntry``.

The template's ``AWS::Events::Rule`` resources are created on the emulator. moto delivers to
their SQS targets itself; targets moto cannot reach are delivered here, after PutEvents and before
the Task's result, in the event shape EventBridge sends: a template function (invoked in-process,
its failure logged as an asynchronous invocation's would be), an SNS topic (the event as the
message), a state machine the runner knows (a new execution with the event as input).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from sfn_workers.local.asl.integrations import TaskError
from sfn_workers.local.identity import ACCOUNT_ID, REGION
from sfn_workers.local.integrations.common import Call, json_text, runtime_error
from sfn_workers.local.integrations.sdk_model import optimised_call

__all__ = ["EventRules", "Events", "bus_name"]

_log = logging.getLogger("sfn_workers.local")

Deliver = Callable[[Any], object]  # what it returns is ignored


def bus_name(value: Any) -> str:
    """``default`` for no bus; a bus's name from its name or ARN."""
    text = str(value or "default")
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


@dataclass
class _Rule:
    name: str
    bus: str
    pattern: Any  # moto's EventPattern
    targets: list[tuple[Deliver, Any]] = field(default_factory=list)  # (deliver, constant Input or None)


class EventRules:
    """The template's rules whose targets this process delivers to (moto delivers to SQS)."""

    def __init__(self) -> None:
        self.rules: list[_Rule] = []
        self.errors: list[BaseException] = []  # failed deliveries (EventBridge would retry, then drop)
        self._lock = threading.Lock()

    def provision(
        self,
        resources: Mapping[str, Any],
        client: Callable[[str], Any],
        local_target: Callable[[str], Deliver | None],
    ) -> None:
        """Create the ``AWS::Events::EventBus``/``Rule`` resources of a template on the emulator.

        ``local_target(arn)`` gives the delivery of a target moto cannot reach, or None."""
        events = client("events")
        for resource in resources.values():
            if resource.type == "AWS::Events::EventBus":
                events.create_event_bus(Name=resource.name)
        for resource in resources.values():
            if resource.type == "AWS::Events::Rule" and resource.properties.get("State", "ENABLED") == "ENABLED":
                self._rule(events, resource.name, resource.properties, local_target)

    def _rule(
        self, events: Any, name: str, props: Mapping[str, Any], local_target: Callable[[str], Deliver | None]
    ) -> None:
        pattern = props.get("EventPattern") or {}
        raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
        bus = bus_name(props.get("EventBusName"))
        events.put_rule(Name=name, EventPattern=raw, EventBusName=bus)
        rule = _Rule(name, bus, EventPattern.load(raw))
        remote = []
        for target in props.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            deliver = local_target(arn)
            constant = json.loads(target["Input"]) if isinstance(target.get("Input"), str) else None
            if deliver is not None:
                rule.targets.append((deliver, constant))
            elif arn.startswith("arn:aws:sqs:"):
                remote.append(
                    {k: v for k, v in target.items() if k in ("Id", "Arn", "Input", "InputPath", "SqsParameters")}
                )
            else:
                _log.warning("EventBridge rule %s: target %s is not delivered locally", name, arn)
        if remote:
            events.put_targets(Rule=name, EventBusName=bus, Targets=remote)
        with self._lock:
            self.rules.append(rule)

    def deliver(self, entry: Mapping[str, Any], event_id: str) -> None:
        """Send one accepted PutEvents entry to the local targets of the rules it matches."""
        event = {
            "version": "0",
            "id": event_id,
            "detail-type": entry.get("DetailType"),
            "source": entry.get("Source"),
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(entry["Detail"]) if isinstance(entry.get("Detail"), str) else entry.get("Detail"),
        }
        bus = bus_name(entry.get("EventBusName"))
        for rule in list(self.rules):
            if rule.bus != bus or not rule.pattern.matches_event(event):
                continue
            for deliver, constant in rule.targets:
                try:
                    deliver(event if constant is None else constant)
                except Exception as exc:
                    _log.warning("EventBridge rule %s: delivery failed: %s", rule.name, exc)
                    self.errors.append(exc)


class Events:
    """The optimised EventBridge integration."""

    def __init__(self, client: Callable[[str], Any], rules: EventRules) -> None:
        self.client = client
        self.rules = rules

    def __call__(self, call: Call) -> Any:
        if call.action != "putEvents":
            raise runtime_error(f"{call.resource}: the optimised EventBridge integration has putEvents only")
        entries = call.parameters.get("Entries")
        if not isinstance(entries, list):
            raise runtime_error(f"{call.resource}: Entries must be a list")
        linked = [
            str(arn)
            for arn in (
                dict(call.context.get("Execution") or {}).get("Id"),
                dict(call.context.get("StateMachine") or {}).get("Id"),
            )
            if arn
        ]
        sent = [self._entry(entry, linked) for entry in entries]
        result = optimised_call(
            self.client("events"),
            "EventBridge",
            "EventBridgeException",
            "PutEvents",
            {**call.parameters, "Entries": sent},
        )
        if result.get("FailedEntryCount"):
            raise TaskError(
                "EventBridge.FailedEntry", json.dumps({k: result[k] for k in ("Entries", "FailedEntryCount")})
            )
        for entry, answer in zip(sent, result.get("Entries") or [], strict=False):
            if answer.get("EventId"):
                self.rules.deliver(entry, str(answer["EventId"]))
        return result

    @staticmethod
    def _entry(entry: Any, linked: list[str]) -> Any:
        if not isinstance(entry, Mapping):
            return entry
        out = dict(entry)
        if "Detail" in out:
            out["Detail"] = json_text(out["Detail"])
        out["Resources"] = [*list(out.get("Resources") or []), *linked]
        return out
