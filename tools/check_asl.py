"""Checks of the sample's state machine that cfn-lint, sam validate and statelint do not make.

cfn-lint does not look inside a DefinitionUri file, and statelint knows nothing of the template,
so the mistakes that only show on AWS (or after an outage) are checked here, on every
``AWS::Serverless::StateMachine`` of a template:

- every ``${Name}`` in the definition has a DefinitionSubstitutions entry, and every entry is used;
- every Map has a finite MaxConcurrency (a literal between 1 and 1000: 0 means unbounded);
- every ``.waitForTaskToken`` Task has HeartbeatSeconds and TimeoutSeconds, and every Task's
  HeartbeatSeconds is below its TimeoutSeconds;
- every Retrier has JitterStrategy FULL and a MaxDelaySeconds, and none retries ValidationError
  (nor a catch-all that includes it: States.ALL, States.TaskFailed);
- a Parallel state has a ResultPath other than ``$`` (its output is an array that would replace the
  state, and later paths such as ``$.items`` would no longer resolve);
- every Lambda or SQS task payload carries ``sfn_context`` (execution and state names), so logs
  and offloaded objects correlate with the execution;
- every loop in the state graph passes through a Choice with a numeric rule that leaves the loop,
  so it is bounded;
- every ``Ref``, ``GetAtt`` and ``${Name}`` in a ``Sub`` of the template names a parameter, a
  resource or a pseudo parameter (cfn-lint misses a dangling one inside AWS::Serverless::Function
  properties, and ``sam validate`` does not look).

Usage: ``python tools/check_asl.py [--template template.yaml]``; exit status 1 lists the problems.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from graphs import strongly_connected  # tools/ is on sys.path when a tool runs

from sfn_workers.local.asl.walk import nested_machines
from sfn_workers.local.asl.walk import walk_states as asl_walk

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
CATCH_ALLS = {"States.ALL", "States.TaskFailed"}
NEVER_RETRIED = {"ValidationError"}
MAX_CONCURRENCY_LIMIT = 1000
CONTEXT_FIELD = "sfn_context"
CONTEXT_VALUE = {"execution.$": "$$.Execution.Name", "state.$": "$$.State.Name"}


def load_template(path: Path) -> Any:
    """A CloudFormation/SAM template as plain data (``!Ref X`` becomes ``{"Ref": "X"}``...)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # nosec B506 - SafeLoader subclass


def state_machines(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, Mapping) and resource.get("Type") == "AWS::Serverless::StateMachine":
            yield name, resource.get("Properties") or {}


def walk_states(states: Mapping[str, Any], where: str = "") -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Every state at any depth: ``(path for messages, name, state)`` (the interpreter's own walk)."""
    for visit in asl_walk({"States": states}, where):
        yield visit.where, visit.name, visit.state


def check_substitutions(text: str, substitutions: Mapping[str, Any]) -> list[str]:
    used = set(PLACEHOLDER.findall(text))
    problems = [f"${{{name}}} has no DefinitionSubstitutions entry" for name in sorted(used - set(substitutions))]
    problems += [f"DefinitionSubstitutions entry {name} is never used" for name in sorted(set(substitutions) - used)]
    return problems


def check_map(where: str, state: Mapping[str, Any]) -> list[str]:
    if "MaxConcurrencyPath" in state:
        return [f"{where}: MaxConcurrencyPath makes the Map's concurrency unbounded by the definition"]
    value = state.get("MaxConcurrency")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        return [
            f"{where}: MaxConcurrency must be an integer between 1 and {MAX_CONCURRENCY_LIMIT} "
            f"(0 or none means unbounded), not {value!r}"
        ]
    return []


def check_timeouts(where: str, state: Mapping[str, Any]) -> list[str]:
    problems = []
    heartbeat, timeout = state.get("HeartbeatSeconds"), state.get("TimeoutSeconds")
    if str(state.get("Resource", "")).endswith(".waitForTaskToken"):
        if heartbeat is None and "HeartbeatSecondsPath" not in state:
            problems.append(f"{where}: a waitForTaskToken task needs HeartbeatSeconds (a dead worker is found early)")
        if timeout is None and "TimeoutSecondsPath" not in state:
            problems.append(f"{where}: a waitForTaskToken task needs TimeoutSeconds (the default is a year)")
    if isinstance(heartbeat, int) and isinstance(timeout, int) and heartbeat >= timeout:
        problems.append(f"{where}: HeartbeatSeconds ({heartbeat}) must be less than TimeoutSeconds ({timeout})")
    return problems


def check_retries(where: str, state: Mapping[str, Any]) -> list[str]:
    problems = []
    for i, retrier in enumerate(state.get("Retry") or []):
        at = f"{where}.Retry[{i}]"
        errors = set(retrier.get("ErrorEquals") or [])
        if retrier.get("JitterStrategy") != "FULL":
            problems.append(f"{at}: JitterStrategy must be FULL (retries in lockstep hammer a recovering service)")
        if not isinstance(retrier.get("MaxDelaySeconds"), int):
            problems.append(f"{at}: MaxDelaySeconds must cap the backoff")
        for bad in sorted(errors & (NEVER_RETRIED | CATCH_ALLS)):
            problems.append(f"{at}: retries {bad}, which includes errors that a retry cannot fix (ValidationError)")
    return problems


def check_parallel(where: str, state: Mapping[str, Any]) -> list[str]:
    if state.get("ResultPath", "$") == "$":
        return [
            f"{where}: a Parallel state's output is an array of its branches' outputs; give it a ResultPath "
            "(e.g. $.payment) so the state's fields are still there after it"
        ]
    return []


def check_context(where: str, state: Mapping[str, Any]) -> list[str]:
    resource = str(state.get("Resource", ""))
    parameters = state.get("Parameters") or {}
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        payload = parameters.get("Payload")
    elif resource.startswith("arn:aws:states:::sqs:sendMessage"):
        payload = parameters.get("MessageBody")
    else:
        return []
    if not isinstance(payload, Mapping) or payload.get(CONTEXT_FIELD) != CONTEXT_VALUE:
        return [f"{where}: the task payload needs {CONTEXT_FIELD}: {json.dumps(CONTEXT_VALUE)} for correlation"]
    return []


def _transitions(state: Mapping[str, Any]) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [rule.get("Next") for rule in state.get("Choices") or []]
    targets += [catcher.get("Next") for catcher in state.get("Catch") or []]
    return [t for t in targets if isinstance(t, str)]


def _cycles(states: Mapping[str, Any]) -> list[list[str]]:
    """Strongly connected components with a loop, each as a list of state names."""

    def successors(name: str) -> list[str]:
        return _transitions(states.get(name) or {})

    return [
        component
        for component in strongly_connected(states, successors)
        if len(component) > 1 or component[0] in successors(component[0])
    ]


def _numeric_exit(state: Mapping[str, Any], loop: set[str]) -> bool:
    def numeric(rule: Mapping[str, Any]) -> bool:
        if any(key.startswith("Numeric") for key in rule):
            return True
        nested = list(rule.get("And") or []) + list(rule.get("Or") or [])
        return any(numeric(r) for r in nested) or (isinstance(rule.get("Not"), Mapping) and numeric(rule["Not"]))

    return any(numeric(rule) and rule.get("Next") not in loop for rule in state.get("Choices") or [])


def check_loops(states: Mapping[str, Any], where: str = "") -> list[str]:
    problems = []
    for component in _cycles(states):
        loop = set(component)
        if not any(states[name].get("Type") == "Choice" and _numeric_exit(states[name], loop) for name in component):
            problems.append(
                f"{where}loop through {', '.join(component)} has no Choice with a numeric rule that leaves it "
                "(count the iterations, e.g. with States.MathAdd, and stop after N)"
            )
    return problems


def check_definition(definition: Mapping[str, Any]) -> list[str]:
    """Problems of one ASL definition (without the template)."""
    problems = check_loops(definition.get("States") or {})
    for where, _name, state in walk_states(definition.get("States") or {}):
        kind = state.get("Type")
        if kind == "Map":
            problems += check_map(where, state)
        if kind == "Parallel":
            problems += check_parallel(where, state)
        for fld, inner in nested_machines(state):
            if isinstance(inner, Mapping):
                problems += check_loops(inner.get("States") or {}, f"{where}.{fld}: ")
        if kind == "Task":
            problems += check_timeouts(where, state)
            problems += check_context(where, state)
        problems += check_retries(where, state)
    return problems


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) and value else value
                if isinstance(target, str):
                    yield target.split(".", 1)[0]
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                if isinstance(text, str):
                    for name in PLACEHOLDER.findall(text):
                        if not name.startswith("!") and name.split(".", 1)[0] not in local:
                            yield name.split(".", 1)[0]
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def check_references(template: Mapping[str, Any]) -> list[str]:
    """Names that a Ref, GetAtt or Sub uses but the template does not define."""
    resources = template.get("Resources") or {}
    known = set(template.get("Parameters") or {}) | set(resources)
    # Resources the SAM transform generates and templates may reference: a function's URL.
    known |= {
        f"{name}Url"
        for name, resource in resources.items()
        if isinstance(resource, Mapping)
        and resource.get("Type") == "AWS::Serverless::Function"
        and "FunctionUrlConfig" in (resource.get("Properties") or {})
    }
    used = set(_references(template.get("Resources") or {})) | set(_references(template.get("Outputs") or {}))
    used |= set(_references(template.get("Globals") or {}))
    return [
        f"{name} is referenced but is no parameter or resource"
        for name in sorted(used - known)
        if not name.startswith("AWS::")
    ]


def check_template(path: Path) -> list[str]:
    """Problems of the template's references and of every state machine in it."""
    template = load_template(path)
    problems = check_references(template)
    machines = list(state_machines(template))
    if not machines:
        return [f"{path}: no AWS::Serverless::StateMachine"]
    for name, props in machines:
        uri = props.get("DefinitionUri")
        if not isinstance(uri, str):
            problems.append(f"{name}: DefinitionUri must be a local file path")
            continue
        asl_path = path.parent / uri
        try:
            text = asl_path.read_text(encoding="utf-8")
            definition = json.loads(text)
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: cannot read {asl_path}: {exc}")
            continue
        substitutions = props.get("DefinitionSubstitutions") or {}
        found = check_substitutions(text, substitutions) + check_definition(definition)
        problems += [f"{name} ({uri}): {problem}" for problem in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    args = parser.parse_args(argv)
    problems = check_template(args.template)
    for problem in problems:
        print(f"check_asl: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_asl: {args.template}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
