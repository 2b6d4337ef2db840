"""The SAM template as the local runner sees it: state machines, functions, queues, tables, buckets.

A template is read once into plain dataclasses. CloudFormation intrinsics (``!Ref``, ``!GetAtt``,
``!Sub``, ``!Join``, ``!If``...) are resolved against *local* names: a function's ARN is the fake
``arn:aws:lambda:us-east-1:123456789012:function:<LogicalId>`` (or its ``FunctionName``), a bucket
or a queue without a name gets a deterministic one. The state machine's ``DefinitionSubstitutions``
are applied with those values, and :meth:`Template.function_for` maps a Resource ARN back to the
function, so the interpreter's Lambda calls land on the right handler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.local.asl.walk import walk_states
from sfn_workers.local.sam_resolve import (
    ACCOUNT,
    FUNCTION_TYPES,
    MACHINE_TYPES,
    REGION,
    Resolver,
    function_arn,
    scalar,
)
from sfn_workers.local.sam_yaml import TemplateError, read_document

__all__ = [
    "ACCOUNT",
    "REGION",
    "EventSourceMapping",
    "Function",
    "Resource",
    "StateMachine",
    "Template",
    "TemplateError",
    "UnknownResourceError",
    "function_arn",
    "function_name_of",
    "lambda_resources",
    "load_template",
    "read_document",
]

#: Lambda's default timeout when neither the function nor Globals set one.
DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY = 128


class UnknownResourceError(TemplateError):
    """A Task's Resource names a Lambda function that no function in the template matches."""


@dataclass(frozen=True)
class Function:
    """An ``AWS::Serverless::Function`` (or ``AWS::Lambda::Function``) with Globals applied."""

    logical_id: str
    name: str
    code_uri: Path
    handler: str
    timeout: float = DEFAULT_TIMEOUT
    memory_size: int = DEFAULT_MEMORY
    runtime: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return function_arn(self.name)


@dataclass(frozen=True)
class StateMachine:
    """A state machine of the template, with its definition substituted and parsed (JSON value)."""

    logical_id: str
    name: str
    definition: Mapping[str, Any]
    source: str  # where the definition came from, for messages
    type: str = "STANDARD"  # or "EXPRESS" (Type / StateMachineType)

    @property
    def arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.name}"


@dataclass(frozen=True)
class EventSourceMapping:
    """An SQS queue feeding a function in batches (a ``Type: SQS`` event or an EventSourceMapping)."""

    function: str  # logical id
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int = 10
    report_batch_item_failures: bool = False
    batching_window_seconds: float = 0.0
    enabled: bool = True


@dataclass(frozen=True)
class Resource:
    """Any other resource: its type, its local physical name and its resolved properties."""

    logical_id: str
    type: str
    name: str
    properties: Mapping[str, Any]


@dataclass
class Template:
    """What the local runner needs of a SAM template."""

    path: Path | None
    functions: dict[str, Function] = field(default_factory=dict)
    state_machines: dict[str, StateMachine] = field(default_factory=dict)
    event_sources: list[EventSourceMapping] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    def state_machine(self, name: str | None = None) -> StateMachine:
        """The state machine called ``name`` (logical id or name), or the only one."""
        where = self.path or "the template"
        if not self.state_machines:
            raise TemplateError(
                f"{where} has no state machine (AWS::Serverless::StateMachine or AWS::StepFunctions::StateMachine)"
            )
        if name is None:
            if len(self.state_machines) > 1:
                names = ", ".join(sorted(self.state_machines))
                raise TemplateError(f"{where} has several state machines ({names}): choose one with --state-machine")
            return next(iter(self.state_machines.values()))
        for machine in self.state_machines.values():
            if name in (machine.logical_id, machine.name):
                return machine
        names = ", ".join(sorted(self.state_machines))
        raise TemplateError(f"{where} has no state machine {name!r} (it has: {names})")

    def function_for(self, reference: str) -> Function | None:
        """The function a Resource or FunctionName refers to: ARN (with or without qualifier),
        partial ARN or name; None when nothing in the template matches."""
        name = function_name_of(reference)
        for fn in self.functions.values():
            if name in (fn.name, fn.logical_id):
                return fn
        return None


_LAMBDA_ARN = re.compile(
    r"^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:|function:)?"
    r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]+))?$"
)


def function_name_of(reference: str) -> str:
    match = _LAMBDA_ARN.match(reference)
    return match.group("name") if match else reference


def is_template(document: Any) -> bool:
    """A CloudFormation/SAM template (as opposed to an ASL definition)."""
    return isinstance(document, Mapping) and "Resources" in document and "States" not in document


# -- the loader ----------------------------------------------------------------------------------


def load_template(
    source: str | Path | Mapping[str, Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
) -> Template:
    """Read a SAM template (a path, or an already parsed document with ``base_dir`` for CodeUri).

    Raises :class:`TemplateError` (a ``ConfigurationError``) with the template path and the
    property at fault; ``FileNotFoundError`` when the file does not exist.
    """
    if isinstance(source, Mapping):
        document: Any = source
        path = None
        base = base_dir or Path.cwd()
        where = "the template"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"template not found: {path}")
        document = read_document(path)
        base = base_dir or path.resolve().parent
        where = str(path)
    if not is_template(document):
        raise TemplateError(f"{where} is not a SAM/CloudFormation template (no Resources)")
    resolver = Resolver(document, where, parameters or {})
    template = Template(path=path)
    globals_function = _mapping((document.get("Globals") or {}).get("Function"))
    for logical_id, resource in (document.get("Resources") or {}).items():
        if not isinstance(resource, Mapping):
            raise TemplateError(f"{where}: resource {logical_id!r} is not a mapping")
        try:
            _add_resource(template, logical_id, resource, resolver, globals_function, base, where)
        except RecursionError as exc:  # a structure deeper than Python's stack, not a cycle we know of
            raise TemplateError(f"{where}: resource {logical_id!r}: nested too deeply to resolve") from exc
    return template


def _add_resource(
    template: Template,
    logical_id: str,
    resource: Mapping[str, Any],
    resolver: Resolver,
    globals_function: Mapping[str, Any],
    base: Path,
    where: str,
) -> None:
    if "Condition" in resource and not resolver.condition(resource["Condition"]):
        return
    rtype = str(resource.get("Type", ""))
    raw_props = _mapping(resource.get("Properties"))
    if rtype == "AWS::Serverless::Function":
        raw_props = _merge_globals(globals_function, raw_props)
    props = resolver.resolve(raw_props, f"{logical_id}.Properties")
    if rtype in FUNCTION_TYPES:
        template.functions[logical_id] = _function(logical_id, rtype, props, resolver, base, where)
        template.event_sources.extend(_sqs_events(logical_id, props, resolver, where))
        template.resources.update(_rule_events(logical_id, props, resolver))
    elif rtype in MACHINE_TYPES:
        template.state_machines[logical_id] = _state_machine(logical_id, rtype, raw_props, resolver, base, where)
    else:
        template.resources[logical_id] = Resource(logical_id, rtype, resolver.name(logical_id), props)
    if rtype == "AWS::Lambda::EventSourceMapping":
        mapping = _event_source_mapping(logical_id, props, resolver, where)
        if mapping is not None:
            template.event_sources.append(mapping)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _merge_globals(globals_: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: the function's value wins; maps (Environment.Variables) merge."""
    merged = dict(globals_)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge_globals(base, value)
        else:
            merged[key] = value
    return merged


def _function(
    logical_id: str, rtype: str, props: Mapping[str, Any], resolver: Resolver, base: Path, where: str
) -> Function:
    handler = props.get("Handler")
    code = props.get("CodeUri") if rtype == "AWS::Serverless::Function" else props.get("Code")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{where}: function {logical_id}: Handler must be 'module.function', not {handler!r}")
    if code is None:
        code = "."
    if not isinstance(code, str):
        raise TemplateError(
            f"{where}: function {logical_id}: CodeUri must be a local directory to run locally, not {code!r}"
        )
    code_uri = (base / code).resolve()
    if not code_uri.is_dir():
        raise TemplateError(f"{where}: function {logical_id}: CodeUri {code!r} is not a directory ({code_uri})")
    env = _mapping(_mapping(props.get("Environment")).get("Variables"))
    return Function(
        logical_id=logical_id,
        name=resolver.name(logical_id),
        code_uri=code_uri,
        handler=handler,
        timeout=float(props.get("Timeout", DEFAULT_TIMEOUT)),
        memory_size=int(props.get("MemorySize", DEFAULT_MEMORY)),
        runtime=props.get("Runtime"),
        environment={str(k): scalar(v) for k, v in env.items()},
    )


def _queue_logical_id(reference: Any, resolver: Resolver) -> str | None:
    """The logical id of the queue an ARN or URL names."""
    if not isinstance(reference, str):
        return None
    name = reference.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    for logical_id, resource in resolver.resources.items():
        is_queue = isinstance(resource, Mapping) and resource.get("Type") == "AWS::SQS::Queue"
        if is_queue and resolver.name(logical_id) == name:
            return logical_id
    return None


def _sqs_events(
    logical_id: str, props: Mapping[str, Any], resolver: Resolver, where: str
) -> Iterator[EventSourceMapping]:
    for event_name, event in _mapping(props.get("Events")).items():
        if not isinstance(event, Mapping) or event.get("Type") != "SQS":
            continue
        spec = _mapping(event.get("Properties"))
        queue = _queue_logical_id(spec.get("Queue"), resolver)
        if queue is None:
            raise TemplateError(
                f"{where}: function {logical_id}: event {event_name}: Queue {spec.get('Queue')!r} "
                "is not a queue of this template"
            )
        yield _mapping_from(logical_id, queue, spec)


def _rule_events(logical_id: str, props: Mapping[str, Any], resolver: Resolver) -> dict[str, Resource]:
    """A function's ``EventBridgeRule``/``CloudWatchEvent`` events, as the AWS::Events::Rule SAM makes of each."""
    rules = {}
    for event_name, event in _mapping(props.get("Events")).items():
        if not isinstance(event, Mapping) or event.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
            continue
        spec = _mapping(event.get("Properties"))
        rule_id = f"{logical_id}{event_name}"
        target = {"Id": f"{logical_id}Target", "Arn": function_arn(resolver.name(logical_id))}
        if "Input" in spec:
            target["Input"] = spec["Input"]
        rule = {"EventPattern": spec.get("Pattern") or {}, "State": spec.get("State", "ENABLED"), "Targets": [target]}
        if spec.get("EventBusName"):
            rule["EventBusName"] = spec["EventBusName"]
        rules[rule_id] = Resource(rule_id, "AWS::Events::Rule", str(spec.get("RuleName") or rule_id), rule)
    return rules


def _event_source_mapping(
    logical_id: str, props: Mapping[str, Any], resolver: Resolver, where: str
) -> EventSourceMapping | None:
    queue = _queue_logical_id(props.get("EventSourceArn"), resolver)
    if queue is None:
        return None  # a stream or another service: not emulated
    target = str(props.get("FunctionName", ""))
    name = function_name_of(target)
    for fid, resource in resolver.resources.items():
        if isinstance(resource, Mapping) and resource.get("Type") in FUNCTION_TYPES and resolver.name(fid) == name:
            return _mapping_from(fid, queue, props)
    raise TemplateError(f"{where}: {logical_id}: FunctionName {target!r} is not a function of this template")


def _mapping_from(function: str, queue: str, spec: Mapping[str, Any]) -> EventSourceMapping:
    responses = spec.get("FunctionResponseTypes") or []
    return EventSourceMapping(
        function=function,
        queue=queue,
        batch_size=int(spec.get("BatchSize", 10)),
        report_batch_item_failures="ReportBatchItemFailures" in responses,
        batching_window_seconds=float(spec.get("MaximumBatchingWindowInSeconds", 0)),
        enabled=bool(spec.get("Enabled", True)),
    )


def _state_machine(
    logical_id: str, rtype: str, raw: Mapping[str, Any], resolver: Resolver, base: Path, where: str
) -> StateMachine:
    subs_raw = raw.get("DefinitionSubstitutions")
    subs = resolver.resolve(subs_raw, f"{logical_id}.DefinitionSubstitutions") if subs_raw else {}
    name_key = "Name" if rtype == "AWS::Serverless::StateMachine" else "StateMachineName"
    name = resolver.name(logical_id) if raw.get(name_key) is None else str(resolver.resolve(raw[name_key], name_key))
    uri = raw.get("DefinitionUri")
    if "Definition" in raw:
        definition = resolver.resolve(raw["Definition"], f"{logical_id}.Definition")
        source = f"{where} ({logical_id}.Definition)"
    elif isinstance(uri, str):
        file = (base / uri).resolve()
        if not file.is_file():
            raise FileNotFoundError(f"{where}: state machine {logical_id}: DefinitionUri not found: {file}")
        definition = read_document(file)
        source = str(file)
    elif "DefinitionString" in raw:
        text = resolver.resolve(raw["DefinitionString"], f"{logical_id}.DefinitionString")
        try:
            definition = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{where}: state machine {logical_id}: DefinitionString is not JSON: {exc}") from exc
        source = f"{where} ({logical_id}.DefinitionString)"
    else:
        raise TemplateError(
            f"{where}: state machine {logical_id} has no local definition (Definition, DefinitionUri as a "
            "file path, or DefinitionString)"
        )
    if not isinstance(definition, Mapping):
        raise TemplateError(f"{source}: the definition is not a JSON object")
    if subs:
        definition = substitute(definition, {str(k): scalar(v) for k, v in _mapping(subs).items()})
    type_key = "Type" if rtype == "AWS::Serverless::StateMachine" else "StateMachineType"
    kind = str(resolver.resolve(raw.get(type_key, "STANDARD"), type_key)).upper()
    return StateMachine(logical_id=logical_id, name=name, definition=definition, source=source, type=kind)


def substitute(value: Any, substitutions: Mapping[str, str]) -> Any:
    """Replace ``${key}`` in every string of a definition (keys and values), as DefinitionSubstitutions do.

    Placeholders without an entry stay as they are (``make validate`` reports those).
    """
    pattern = re.compile(r"\$\{([^}]+)\}")

    def text(s: str) -> str:
        if "${" not in s:
            return s
        return pattern.sub(lambda m: substitutions.get(m.group(1), m.group(0)), s)

    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [substitute(v, substitutions) for v in value]
    if isinstance(value, Mapping):
        return {text(k): substitute(v, substitutions) for k, v in value.items()}
    return value


# -- which functions a definition calls ----------------------------------------------------------


def iter_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (name, state) of a definition, nested Parallel branches and Map processors included."""
    for visit in walk_states(definition):
        yield visit.name, visit.state


def lambda_resources(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(state name, function reference) for each Task that invokes a Lambda with a static name."""
    found: list[tuple[str, str]] = []
    for name, state in iter_states(definition):
        if state.get("Type") != "Task":
            continue
        resource = state.get("Resource")
        if not isinstance(resource, str):
            continue
        if resource.startswith("arn:aws:states:::lambda:invoke"):
            for key in ("Parameters", "Arguments"):
                params = state.get(key)
                if isinstance(params, Mapping) and isinstance(params.get("FunctionName"), str):
                    fn = params["FunctionName"]
                    if not fn.startswith("{%"):
                        found.append((name, fn))
        elif ":lambda:" in resource and ":function:" in resource:
            found.append((name, resource))
    return found
