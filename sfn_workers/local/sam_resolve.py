"""CloudFormation intrinsics (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``...) resolved against local names.

Physical names are deterministic (a function keeps its logical id unless ``FunctionName`` says
otherwise) and ARNs use the local fake identity. A resource naming itself through ``!Ref``/``!GetAtt``
and conditions referring to each other are reported as cycles, with the file and the resource or
condition, instead of recursing until Python gives up.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from sfn_workers.local.identity import ACCOUNT_ID as ACCOUNT
from sfn_workers.local.identity import REGION
from sfn_workers.local.sam_yaml import TemplateError

__all__ = [
    "ACCOUNT",
    "FUNCTION_TYPES",
    "MACHINE_TYPES",
    "NO_VALUE",
    "REGION",
    "STACK",
    "Resolver",
    "function_arn",
    "scalar",
]

STACK = "sfn-workers-local"
NO_VALUE = object()  # AWS::NoValue: the property disappears


def function_arn(name: str) -> str:
    """The fake ARN the local runner gives a function (what DefinitionSubstitutions receive)."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


class Resolver:
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
        self._naming: list[str] = []  # resources whose name is being resolved, in order
        self._evaluating: list[str] = []  # conditions being evaluated, in order

    # physical names ------------------------------------------------------------------------------

    def name(self, logical_id: str) -> str:
        """The physical name of a resource (its explicit name property, else a deterministic one)."""
        if logical_id in self.names:
            return self.names[logical_id]
        if logical_id in self._naming:
            chain = " -> ".join([*self._naming[self._naming.index(logical_id) :], logical_id])
            raise TemplateError(f"{self.where}: resource {logical_id!r} names itself in a cycle ({chain})")
        self._naming.append(logical_id)
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
        elif rtype in FUNCTION_TYPES or rtype in MACHINE_TYPES:
            name = logical_id  # short, readable, what users type in --state-machine
        else:
            name = f"{STACK}-{logical_id}"
        self._naming.pop()
        self.names[logical_id] = name
        return name

    def ref(self, target: str) -> Any:
        if target in self.pseudo:
            return self.pseudo[target]
        if target == "AWS::NoValue":
            return NO_VALUE
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
            if name in self._evaluating:
                chain = " -> ".join([*self._evaluating[self._evaluating.index(name) :], name])
                raise TemplateError(f"{self.where}: Conditions.{name}: conditions refer to each other ({chain})")
            self._evaluating.append(name)
            try:
                self.conditions[name] = bool(self.resolve(self.conditions_spec[name], f"Conditions.{name}"))
            finally:
                self._evaluating.pop()
        return self.conditions[name]

    # the evaluator --------------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v, where) for v in value]
            return [v for v in items if v is not NO_VALUE]
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
            if resolved is not NO_VALUE:
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
            return scalar(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    _functions: dict[str, Callable[[Resolver, Any, str], Any]] = {
        "Ref": lambda self, arg, where: self.ref(arg),
        "Fn::GetAtt": lambda self, arg, where: self.get_att(
            *(arg.split(".", 1) if isinstance(arg, str) else self.resolve(arg, where))
        ),
        "Fn::Sub": lambda self, arg, where: self._sub(arg, where),
        "Fn::Join": lambda self, arg, where: str(arg[0]).join(
            scalar(v) for v in self.resolve(arg[1], where) if v is not NO_VALUE
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


def _unsupported(resolver: Resolver, name: str, where: str) -> Any:
    raise TemplateError(f"{resolver.where}: {where}: {name} cannot be resolved locally (no other stacks here)")


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(scalar(v) for v in value)
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

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
