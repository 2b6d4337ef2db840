"""Mocked Task responses in AWS Step Functions Local's mock config format.

A file written for AWS's tool works unchanged::

    {
      "StateMachines": {
        "<state machine name>": {
          "TestCases": {"<test case>": {"<state name>": "<mocked response name>", ...}}
        }
      },
      "MockedResponses": {
        "<mocked response name>": {
          "0": {"Return": <the Task's result>},
          "1-2": {"Throw": {"Error": "...", "Cause": "..."}}
        }
      }
    }

Each key of a mocked response is an invocation index or an inclusive range of them, counted per
state and execution from 0 (a retry or a loop back is the next invocation). Under a test case, a
mocked Task state never reaches its integration: ``Return`` is its result (for
``lambda:invoke``, the Invoke API answer whose ``Payload`` is the function's result; for a
``.waitForTaskToken`` Task, what the token's answer sends) and ``Throw`` fails it with that error
and cause. States the test case does not name run as usual.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.errors import ConfigurationError
from sfn_workers.local.asl.integrations import LambdaInvocation, TaskError
from sfn_workers.local.sam import iter_states

__all__ = ["MockConfig", "MockConfigError", "MockedIntegrations", "ServeMocks", "TestCase", "task_resources"]

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class MockConfigError(ConfigurationError):
    """The mock config file is not in AWS's format, or names a test case or response it lacks."""


@dataclass(frozen=True)
class _Answer:
    first: int
    last: int
    kind: str  # "Return" or "Throw"
    value: Any


def _answers(name: str, spec: Any) -> list[_Answer]:
    if not isinstance(spec, Mapping) or not spec:
        raise MockConfigError(f"MockedResponses.{name} must be an object of invocation indexes")
    answers = []
    for key, answer in spec.items():
        match = _RANGE.match(str(key))
        if match is None:
            raise MockConfigError(f"MockedResponses.{name}: {key!r} is not an index ('0') or a range ('1-2')")
        if not isinstance(answer, Mapping) or len(answer) != 1 or next(iter(answer)) not in ("Return", "Throw"):
            raise MockConfigError(f"MockedResponses.{name}.{key} must hold exactly one of Return or Throw")
        kind, value = next(iter(answer.items()))
        if kind == "Throw" and not (isinstance(value, Mapping) and isinstance(value.get("Error"), str)):
            raise MockConfigError(f"MockedResponses.{name}.{key}.Throw needs an Error (and may have a Cause)")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first:
            raise MockConfigError(f"MockedResponses.{name}: range {key!r} ends before it starts")
        answers.append(_Answer(first, last, kind, value))
    return answers


@dataclass
class TestCase:
    """One test case: which states are mocked, with what, and how often each has been invoked."""

    __test__ = False  # not a pytest class

    state_machine: str
    name: str
    states: dict[str, tuple[str, list[_Answer]]]  # state -> (mocked response name, answers)
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def always(cls, state: str, kind: str, value: Any) -> TestCase:
        """A test case whose ``state`` answers every invocation with ``kind`` (Return/Throw) ``value``."""
        return cls("", "", {state: ("", [_Answer(0, 1 << 62, kind, value)])})

    def mocks(self, state: str) -> bool:
        return state in self.states

    def next_answer(self, execution: str, state: str) -> tuple[str, Any]:
        """(``"Return"``, result) or (``"Throw"``, {Error, Cause}) for this invocation of ``state``."""
        response, answers = self.states[state]
        with self._lock:
            index = self._counts.get((execution, state), 0)
            self._counts[(execution, state)] = index + 1
        for answer in answers:
            if answer.first <= index <= answer.last:
                return answer.kind, answer.value
        raise TaskError(
            "States.Runtime",
            f"mock config: {response} has no response for invocation {index} of state {state!r} "
            f"(test case {self.name})",
        )


class MockConfig:
    """A parsed mock config file (see the module's doc)."""

    def __init__(self, document: Any, source: str = "the mock config") -> None:
        if not isinstance(document, Mapping):
            raise MockConfigError(f"{source}: must be a JSON object with StateMachines and MockedResponses")
        machines, responses = document.get("StateMachines"), document.get("MockedResponses")
        if not isinstance(machines, Mapping) or not isinstance(responses, Mapping):
            raise MockConfigError(f"{source}: needs StateMachines and MockedResponses objects")
        self.source = source
        self.responses = {str(name): _answers(str(name), spec) for name, spec in responses.items()}
        self.cases: dict[str, dict[str, dict[str, str]]] = {}
        for machine, spec in machines.items():
            cases = spec.get("TestCases") if isinstance(spec, Mapping) else None
            if not isinstance(cases, Mapping):
                raise MockConfigError(f"{source}: StateMachines.{machine} needs a TestCases object")
            for case, states in cases.items():
                if not isinstance(states, Mapping):
                    raise MockConfigError(f"{source}: StateMachines.{machine}.TestCases.{case} must map states")
                for state, response in states.items():
                    if response not in self.responses:
                        raise MockConfigError(
                            f"{source}: test case {case} mocks state {state!r} with {response!r}, "
                            "which is not in MockedResponses"
                        )
            self.cases[str(machine)] = {str(c): {str(s): str(r) for s, r in st.items()} for c, st in cases.items()}

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> MockConfig:
        """From a file path or an already parsed document."""
        if isinstance(source, Mapping):
            return cls(source)
        path = Path(source)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MockConfigError(f"mock config not found: {path}") from None
        except ValueError as exc:
            raise MockConfigError(f"{path}: not valid JSON: {exc}") from exc
        return cls(document, str(path))

    def mocked_states(self, state_machine: str) -> set[str]:
        """The states some test case of ``state_machine`` mocks (they may lack a function)."""
        return {state for states in self.cases.get(state_machine, {}).values() for state in states}

    def test_case(self, state_machine: str, name: str, *, only_machine: bool = False) -> TestCase:
        """The test case ``name`` of ``state_machine``. ``only_machine``: the state machine has no name
        of its own (a bare definition), so the one state machine that has such a test case is used."""
        cases = self.cases.get(state_machine)
        if cases is None and only_machine:
            owners = [m for m, c in self.cases.items() if name in c]
            if len(owners) == 1:
                state_machine, cases = owners[0], self.cases[owners[0]]
        if cases is None:
            known = ", ".join(sorted(self.cases)) or "none"
            raise MockConfigError(
                f"{self.source}: no state machine {state_machine!r} in StateMachines (it has: {known})"
            )
        if name not in cases:
            known = ", ".join(sorted(cases)) or "none"
            raise MockConfigError(f"{self.source}: {state_machine} has no test case {name!r} (it has: {known})")
        states = {state: (response, self.responses[response]) for state, response in cases[name].items()}
        return TestCase(state_machine, name, states)


def task_resources(definition: Mapping[str, Any]) -> dict[str, str]:
    """State name -> Resource of every Task state of a definition (nested ones included)."""
    return {
        name: str(state.get("Resource", "")) for name, state in iter_states(definition) if state.get("Type") == "Task"
    }


class MockedIntegrations:
    """``asl.Integrations`` that answer a test case's mocked states and hand the rest to ``inner``."""

    def __init__(self, inner: Any, case: TestCase, resources: Mapping[str, str], tokens: Any) -> None:
        self.inner = inner
        self.case = case
        self.resources = resources
        self.tokens = tokens

    def _mocked(self, context: Mapping[str, Any]) -> tuple[str, Any] | None:
        state = str(dict(context.get("State") or {}).get("Name", ""))
        if not self.case.mocks(state):
            return None
        execution = str(dict(context.get("Execution") or {}).get("Id", ""))
        kind, value = self.case.next_answer(execution, state)
        if kind == "Throw":
            raise TaskError(value["Error"], value.get("Cause"))
        resource = self.resources.get(state, "")
        token = dict(context.get("Task") or {}).get("Token")
        if resource.endswith(".waitForTaskToken") and token:
            self.tokens.send_task_success(token, json.dumps(value))
            return kind, {}
        if resource.startswith("arn:aws:states:::lambda:invoke") and isinstance(value, Mapping):
            return kind, value.get("Payload")  # the interpreter wraps it as Invoke's answer
        return kind, value

    def invoke_lambda(self, call: LambdaInvocation) -> Any:
        mocked = self._mocked(call.context)
        return self.inner.invoke_lambda(call) if mocked is None else mocked[1]

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        mocked = self._mocked(context)
        return self.inner.call_service(resource, parameters, context) if mocked is None else mocked[1]


class ServeMocks:
    """``sfn-workers serve --mock-config``: StartExecution of ``stateMachineArn#TestCase`` runs that test case."""

    def __init__(self, config: MockConfig, tokens: Any) -> None:
        self.config = config
        self.tokens = tokens

    def integrations(self, inner: Any, state_machine: str, definition_text: str, test_case: str) -> MockedIntegrations:
        """``inner`` behind the test case's mocks; MockConfigError when the config lacks it."""
        case = self.config.test_case(state_machine, test_case)
        return MockedIntegrations(inner, case, task_resources(json.loads(definition_text)), self.tokens)
