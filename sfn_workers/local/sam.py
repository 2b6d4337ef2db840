"""The SAM template as the local runner sees it: state machines, functions, queues, tables, buckets.

A template is read once into plain dataclasses. CloudFormation intrinsics (``!Ref``, ``!GetAtt``,
``!Sub``, ``!Join``, ``!If``...) are resolved against *local* names: a function's ARN is the fake
``arn:aws:lambda:us-east-1:123456789012:function:<LogicalId>`` (or its ``FunctionName``), a bucket
or a queue without a name gets a deterministic one. The state machine's ``DefinitionSubstitutions``
are applied with those values, and :meth:`Template.function_for` maps a Resource ARN back to the
function, so the interpreter's Lambda calls land on the right handler.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.errors import ConfigurationError
from sfn_workers.local.asl.walk import walk_states

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

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "sfn-workers-local"
#: Lambda's default timeout when neither the function nor Globals set one.
DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY = 128

_NO_VALUE = object()  # AWS::NoValue: the property disappears


class TemplateError(ConfigurationError):
    """The template (or definition) cannot be run locally; the message says what and where."""


class UnknownResourceError(TemplateError):
    """A Task's Resource names a Lambda function that no function in the template matches."""


def function_arn(name: str) -> str:
    """The fake ARN the local runner gives a function (what DefinitionSubstitutions receive)."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


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


# -- reading YAML with CloudFormation tags -------------------------------------------------------


_loader: Any = None


def _yaml_loader() -> Any:
    global _loader
    if _loader is not None:
        return _loader
    import yaml

    # libyaml's parser when PyYAML has it (about ten times faster on a SAM template), else Python's.
    safe: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(safe):  # type: ignore[misc]
        """SafeLoader that turns ``!Ref X`` into ``{"Ref": "X"}`` and ``!Sub`` into ``{"Fn::Sub": ...}``."""

    def construct(loader: Any, suffix: str, node: Any) -> Any:
        tag = suffix
        key = "Ref" if tag == "Ref" else "Condition" if tag == "Condition" else f"Fn::{tag}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    Loader.add_multi_constructor("!", construct)
    _loader = Loader
    return Loader


_documents: dict[tuple[str, str], Any] = {}


def read_document(path: Path) -> Any:
    """The parsed JSON or YAML file (a fresh copy: each runner may resolve it in place). Parsed once
    per process while its text is unchanged, so ``run_execution`` per test does not re-parse it."""
    import copy

    text = path.read_text(encoding="utf-8")
    key = (str(path), text)
    if key not in _documents:
        if len(_documents) >= 64:
            _documents.clear()
        _documents[key] = _parse_document(path, text)
    return copy.deepcopy(_documents[key])


def _parse_document(path: Path, text: str) -> Any:
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                raise TemplateError(f"{path}: not valid JSON: {exc}") from exc
    import yaml

    try:
        return _yaml_loader()(text).get_single_data()  # what yaml.load does, with our SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc


def is_template(document: Any) -> bool:
    """A CloudFormation/SAM template (as opposed to an ASL definition)."""
    return isinstance(document, Mapping) and "Resources" in document and "States" not in document


# -- intrinsic functions -------------------------------------------------------------------------


class _Resolver:
    """Evaluates CloudFormation intrinsics against the local physical names and fake ARNs."""

    def __init__(self, template: Mapping[str, Any], where: str, parameters: Mapping[str, Any]) -> None:
        self.where = where
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.mappings: Mapping[str, Any] = template.get("Mappings") or {}
        self.parameters: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in parameters:
                self.parameters[name] = parameters[name]
            elif isinstance(spec, Mapping) and "Default" in spec:
                self.parameters[name] = spec["Default"]
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise TemplateError(f"{where}: no parameter named {', '.join(sorted(unknown))}")
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.conditions_spec: Mapping[str, Any] = template.get("Conditions") or {}
        self.conditions: dict[str, bool] = {}
        self.names: dict[str, str] = {}
        self._naming: set[str] = set()

    # physical names ------------------------------------------------------------------------------

    def name(self, logical_id: str) -> str:
        """The physical name of a resource (its explicit name property, else a deterministic one)."""
        if logical_id in self.names:
            return self.names[logical_id]
        if logical_id in self._naming:
            raise TemplateError(f"{self.where}: resource {logical_id!r} names itself in a cycle")
        self._naming.add(logical_id)
        resource = self.resources.get(logical_id)
        if not isinstance(resource, Mapping):
            raise TemplateError(f"{self.where}: !Ref/!GetAtt names {logical_id!r}, which is not a resource")
        props = resource.get("Properties") or {}
        rtype = resource.get("Type", "")
        key = _NAME_PROPERTY.get(rtype)
        explicit = self.resolve(props.get(key), f"{logical_id}.{key}") if key else None
        if isinstance(explicit, str) and explicit:
            name = explicit
        elif rtype == "AWS::S3::Bucket":
            name = f"{STACK}-{logical_id.lower()}"[:63]
        elif rtype == "AWS::SQS::Queue" and props.get("FifoQueue"):
            name = f"{STACK}-{logical_id}.fifo"
        elif rtype in _FUNCTION_TYPES or rtype in _MACHINE_TYPES:
            name = logical_id  # short, readable, what users type in --state-machine
        else:
            name = f"{STACK}-{logical_id}"
        self._naming.discard(logical_id)
        self.names[logical_id] = name
        return name

    def ref(self, target: str) -> Any:
        if target in self.pseudo:
            return self.pseudo[target]
        if target == "AWS::NoValue":
            return _NO_VALUE
        if target in self.parameters:
            return self.parameters[target]
        resource = self.resources.get(target)
        if not isinstance(resource, Mapping):
            raise TemplateError(f"{self.where}: !Ref {target}: no such parameter or resource")
        rtype = resource.get("Type", "")
        name = self.name(target)
        if rtype == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if rtype == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        return name

    def get_att(self, target: str, attribute: str) -> Any:
        resource = self.resources.get(target)
        if not isinstance(resource, Mapping):
            raise TemplateError(f"{self.where}: !GetAtt {target}.{attribute}: no such resource")
        rtype = resource.get("Type", "")
        name = self.name(target)
        arns = {
            "AWS::Serverless::Function": function_arn(name),
            "AWS::Lambda::Function": function_arn(name),
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Serverless::SimpleTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        }
        if attribute == "Arn" and rtype in arns:
            return arns[rtype]
        if attribute in ("QueueName", "TopicName", "Name", "TableName", "FunctionName", "StateMachineName"):
            return name
        if attribute == "QueueUrl":
            return self.ref(target)
        if attribute == "TopicArn":
            return arns["AWS::SNS::Topic"]
        if attribute in ("DomainName", "RegionalDomainName"):
            return f"{name}.s3.{REGION}.amazonaws.com"
        # Anything else still resolves (the runner never needs it): a readable placeholder.
        return f"{name}.{attribute}"

    # conditions -----------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            if name not in self.conditions_spec:
                raise TemplateError(f"{self.where}: no condition named {name!r}")
            self.conditions[name] = bool(self.resolve(self.conditions_spec[name], f"Conditions.{name}"))
        return self.conditions[name]

    # the evaluator --------------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v, where) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            function = self._functions.get(key)
            if function is not None:
                try:
                    return function(self, arg, where)
                except TemplateError:
                    raise
                except (TypeError, ValueError, KeyError, IndexError) as exc:
                    raise TemplateError(f"{self.where}: {where}: cannot evaluate {key}: {exc}") from exc
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v, f"{where}.{k}")
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], self.resolve(arg[1], where)

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] in self.resources:
                target, attribute = expr.split(".", 1)
                return str(self.get_att(target, attribute))
            return _scalar(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    _functions: dict[str, Callable[[_Resolver, Any, str], Any]] = {
        "Ref": lambda self, arg, where: self.ref(arg),
        "Fn::GetAtt": lambda self, arg, where: self.get_att(
            *(arg.split(".", 1) if isinstance(arg, str) else self.resolve(arg, where))
        ),
        "Fn::Sub": lambda self, arg, where: self._sub(arg, where),
        "Fn::Join": lambda self, arg, where: str(arg[0]).join(
            _scalar(v) for v in self.resolve(arg[1], where) if v is not _NO_VALUE
        ),
        "Fn::Select": lambda self, arg, where: self.resolve(arg[1], where)[int(self.resolve(arg[0], where))],
        "Fn::Split": lambda self, arg, where: str(self.resolve(arg[1], where)).split(arg[0]),
        "Fn::If": lambda self, arg, where: self.resolve(arg[1] if self.condition(arg[0]) else arg[2], where),
        "Fn::Equals": lambda self, arg, where: self.resolve(arg[0], where) == self.resolve(arg[1], where),
        "Fn::Not": lambda self, arg, where: not self.resolve(arg[0], where),
        "Fn::And": lambda self, arg, where: all(self.resolve(v, where) for v in arg),
        "Fn::Or": lambda self, arg, where: any(self.resolve(v, where) for v in arg),
        "Condition": lambda self, arg, where: self.condition(arg),
        "Fn::FindInMap": lambda self, arg, where: self.mappings[self.resolve(arg[0], where)][
            self.resolve(arg[1], where)
        ][self.resolve(arg[2], where)],
        "Fn::GetAZs": lambda self, arg, where: [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
        "Fn::Base64": lambda self, arg, where: base64.b64encode(str(self.resolve(arg, where)).encode()).decode(),
        "Fn::ImportValue": lambda self, arg, where: _unsupported(self, "Fn::ImportValue", where),
    }


def _unsupported(resolver: _Resolver, name: str, where: str) -> Any:
    raise TemplateError(f"{resolver.where}: {where}: {name} cannot be resolved locally (no other stacks here)")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value)
    return str(value)


_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
}

_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")


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
    resolver = _Resolver(document, where, parameters or {})
    template = Template(path=path)
    globals_function = _mapping((document.get("Globals") or {}).get("Function"))
    for logical_id, resource in (document.get("Resources") or {}).items():
        if not isinstance(resource, Mapping):
            raise TemplateError(f"{where}: resource {logical_id!r} is not a mapping")
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        rtype = str(resource.get("Type", ""))
        raw_props = _mapping(resource.get("Properties"))
        if rtype == "AWS::Serverless::Function":
            raw_props = _merge_globals(globals_function, raw_props)
        props = resolver.resolve(raw_props, f"{logical_id}.Properties")
        if rtype in _FUNCTION_TYPES:
            template.functions[logical_id] = _function(logical_id, rtype, props, resolver, base, where)
            template.event_sources.extend(_sqs_events(logical_id, props, resolver, where))
        elif rtype in _MACHINE_TYPES:
            template.state_machines[logical_id] = _state_machine(logical_id, rtype, raw_props, resolver, base, where)
        else:
            template.resources[logical_id] = Resource(logical_id, rtype, resolver.name(logical_id), props)
        if rtype == "AWS::Lambda::EventSourceMapping":
            mapping = _event_source_mapping(logical_id, props, resolver, where)
            if mapping is not None:
                template.event_sources.append(mapping)
    return template


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
    logical_id: str, rtype: str, props: Mapping[str, Any], resolver: _Resolver, base: Path, where: str
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
        environment={str(k): _scalar(v) for k, v in env.items()},
    )


def _queue_logical_id(reference: Any, resolver: _Resolver) -> str | None:
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
    logical_id: str, props: Mapping[str, Any], resolver: _Resolver, where: str
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


def _event_source_mapping(
    logical_id: str, props: Mapping[str, Any], resolver: _Resolver, where: str
) -> EventSourceMapping | None:
    queue = _queue_logical_id(props.get("EventSourceArn"), resolver)
    if queue is None:
        return None  # a stream or another service: not emulated
    target = str(props.get("FunctionName", ""))
    name = function_name_of(target)
    for fid, resource in resolver.resources.items():
        if isinstance(resource, Mapping) and resource.get("Type") in _FUNCTION_TYPES and resolver.name(fid) == name:
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
    logical_id: str, rtype: str, raw: Mapping[str, Any], resolver: _Resolver, base: Path, where: str
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
        definition = substitute(definition, {str(k): _scalar(v) for k, v in _mapping(subs).items()})
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
