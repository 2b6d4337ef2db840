"""A person's answer to a hand-off state, given during a local run through the real decision function.

A state whose worker hands its token off (``ctx.hand_off()``) waits for someone outside the
execution. Locally, that someone is an :class:`Answer` named by the state: once the state's worker
has returned (history event ``TaskSubmitted``), the answer is sent to the template's decision
function (``ApprovalDecisionFunction`` by default) as a function URL request would be, with the
approval id the worker published (``sfn_workers.report.handoff_id`` of the token). So the same code
that answers on AWS answers locally, and its HTTP-like responses are kept in
:attr:`Approvals.responses` for tests to look at. A state with no answer waits until its
HeartbeatSeconds or TimeoutSeconds pass (in virtual time by default).

    run_execution("template.yaml", order, approvals={"ManualApproval": Answer(approved=True, reviewer="ann")})
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_workers.report import handoff_id

__all__ = [
    "DECISION_FUNCTION",
    "Answer",
    "Approvals",
    "Response",
    "answers_from_options",
    "decision_event",
    "load_answers",
]

#: The function that takes decisions, unless an answer names another (the sample's).
DECISION_FUNCTION = "ApprovalDecisionFunction"
#: Who decides when no reviewer is named.
LOCAL_REVIEWER = "local-reviewer"

Listener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the person decides for one state.

    ``times`` sends the same decision more than once (a double click): the decision function must
    answer the second one without touching the execution.
    """

    approved: bool
    reviewer: str = LOCAL_REVIEWER
    reason: str = ""
    times: int = 1
    function: str = DECISION_FUNCTION
    token_field: str = "taskToken"

    @classmethod
    def of(cls, spec: Answer | bool | Mapping[str, Any]) -> Answer:
        """An answer from itself, a bare True/False, or a mapping (an answers file's entry)."""
        if isinstance(spec, Answer):
            return spec
        if isinstance(spec, bool):
            return cls(approved=spec)
        if isinstance(spec, Mapping) and isinstance(spec.get("approved"), bool):
            known = {"approved", "reviewer", "reason", "times", "function", "token_field"}
            unknown = sorted(set(spec) - known)
            if unknown:
                raise ValueError(f"unknown answer fields {unknown}; known: {sorted(known)}")
            return cls(**dict(spec))
        raise ValueError(f"an answer is true/false or an object with a boolean 'approved', not {spec!r}")


@dataclass(frozen=True, slots=True)
class Response:
    """What the decision function answered to one decision."""

    state: str
    status: int
    body: Any


def decision_event(approval_id: str, answer: Answer) -> dict[str, Any]:
    """A function URL request (payload format 2.0) carrying the decision, as a signed caller sends it."""
    body = {
        "approvalId": approval_id,
        "approved": answer.approved,
        "reviewer": answer.reviewer,
        "reason": answer.reason,
    }
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/"},
            "authorizer": {"iam": {"userArn": f"arn:aws:iam::000000000000:user/{answer.reviewer}"}},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def load_answers(path: str | Path) -> dict[str, Answer]:
    """An answers file: ``{"StateName": true | false | {"approved": ..., "reviewer": ..., ...}}``."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: an answers file is an object naming states")
    return {str(state): Answer.of(spec) for state, spec in document.items()}


def answers_from_options(
    approve: list[str] | None, reject: list[str] | None, answers_file: str | None
) -> dict[str, Answer]:
    """``sfn-workers run --approve STATE[:REVIEWER] --reject STATE[:REVIEWER] --answers FILE``.

    Raises ValueError (the CLI's usage error) for a state answered twice or an unreadable file.
    """
    answers = load_answers(answers_file) if answers_file else {}
    for approved, given in ((True, approve or []), (False, reject or [])):
        for option in given:
            state, _, reviewer = option.partition(":")
            if not state:
                raise ValueError(f"{option!r}: name the state (STATE or STATE:REVIEWER)")
            if state in answers:
                raise ValueError(f"state {state!r} is answered twice")
            answers[state] = Answer(approved=approved, reviewer=reviewer or LOCAL_REVIEWER)
    return answers


@dataclass
class Approvals:
    """The answers of one or more runs, and the decision function's responses to them."""

    answers: dict[str, Answer]
    responses: list[Response] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, spec: Approvals | Mapping[str, Answer | bool | Mapping[str, Any]]) -> Approvals:
        if isinstance(spec, Approvals):
            return spec
        return cls({str(state): Answer.of(answer) for state, answer in spec.items()})

    def listener(self, function_for: Callable[[str], Any], then: Listener | None = None) -> Listener:
        """A history listener that answers the named states; ``then`` still sees every event.

        ``function_for(reference)`` finds the decision function (``LocalRunner.function_for``).
        """
        states: dict[int, str] = {}  # event id -> the state it belongs to
        tokens: dict[int, str] = {}  # TaskScheduled id (and later ids) -> the token it handed out

        def listen(event: dict[str, Any]) -> None:
            self._follow(event, states, tokens, function_for)
            if then is not None:
                then(event)

        return listen

    def _follow(
        self, event: dict[str, Any], states: dict[int, str], tokens: dict[int, str], function_for: Callable[[str], Any]
    ) -> None:
        kind, own, previous = event.get("type", ""), event.get("id"), event.get("previousEventId")
        if not isinstance(own, int):
            return
        if kind.endswith("StateEntered"):
            states[own] = event["stateEnteredEventDetails"]["name"]
            return
        if previous not in states:
            return
        state = states[own] = states[previous]
        answer = self.answers.get(state)
        if answer is None:
            return
        if kind == "TaskScheduled":
            token = _token_in(event["taskScheduledEventDetails"].get("parameters"), answer.token_field)
            if token is not None:
                tokens[own] = token
        elif previous in tokens:
            tokens[own] = tokens[previous]
            if kind == "TaskSubmitted":  # the worker handed off and returned: the person answers
                self._decide(state, answer, tokens[own], function_for)

    def _decide(self, state: str, answer: Answer, token: str, function_for: Callable[[str], Any]) -> None:
        function = function_for(answer.function)
        if function is None:
            raise LookupError(f"state {state!r}: no decision function {answer.function!r} in the template")
        event = decision_event(handoff_id(token), answer)
        for _ in range(answer.times):
            reply = function.invoke(event)
            status = int(reply.get("statusCode", 200)) if isinstance(reply, Mapping) else 200
            body = reply.get("body") if isinstance(reply, Mapping) else reply
            if isinstance(body, str):
                with contextlib.suppress(ValueError):
                    body = json.loads(body)
            with self._lock:
                self.responses.append(Response(state, status, body))


def _token_in(parameters: Any, token_field: str) -> str | None:
    """The token a Task's parameters pass to its worker (``Payload.<field>``, ``MessageBody.<field>`` or top level)."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except ValueError:
            return None
    if not isinstance(parameters, Mapping):
        return None
    for holder in (parameters.get("Payload"), parameters.get("MessageBody"), parameters):
        if isinstance(holder, str):
            try:
                holder = json.loads(holder)
            except ValueError:
                continue
        if isinstance(holder, Mapping) and isinstance(holder.get(token_field), str):
            return str(holder[token_field])
    return None
