"""The run loop's seams: stopping at the next step, one fake identity, the clock protocol, the walk, typed specs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sfn_workers.local.asl import Clock, RealClock, TokenBroker, VirtualClock, parse_definition
from sfn_workers.local.asl.specs import ChoiceSpec, MapSpec, PassSpec, TaskSpec
from sfn_workers.local.asl.walk import walk_states
from sfn_workers.local.identity import ACCOUNT_ID, REGION

from .asl_stubs import ARN, Functions, events, execute, execution

LOOP = {
    "StartAt": "Again",
    "States": {
        "Again": {"Type": "Pass", "Next": "Forever"},
        "Forever": {"Type": "Choice", "Choices": [{"Variable": "$", "IsPresent": True, "Next": "Again"}]},
    },
}


def test_stop_ends_an_endless_loop_before_its_next_state() -> None:
    seen: list[str] = []
    holder: list[Any] = []

    def listener(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        if len(seen) == 40:
            holder[0].stop("Stopped", "by test")

    ex = execution(LOOP, {}, listener=listener)
    holder.append(ex)
    r = ex.run()
    assert r.status == "ABORTED" and (r.error, r.cause) == ("Stopped", "by test")
    after = seen[40:]
    assert not any(t.endswith("StateEntered") for t in after)  # no state entered once stopped
    assert after[-1] == "ExecutionAborted"


def test_stop_between_retries_makes_no_further_attempt() -> None:
    calls: list[int] = []
    holder: list[Any] = []

    def flaky(_payload: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            holder[0].stop()
        raise RuntimeError("still failing")

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": ARN + "f",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 50, "IntervalSeconds": 1}],
                "End": True,
            }
        },
    }
    ex = execution(definition, {}, Functions(f=flaky))
    holder.append(ex)
    r = ex.run()
    assert r.status == "ABORTED"
    assert len(calls) == 3


def test_stop_during_a_map_starts_no_further_iteration() -> None:
    done: list[int] = []
    holder: list[Any] = []

    def work(item: int) -> int:
        done.append(item)
        if len(done) == 5:
            holder[0].stop()
        return item

    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "W",
                    "States": {"W": {"Type": "Task", "Resource": ARN + "w", "End": True}},
                },
                "End": True,
            }
        },
    }
    ex = execution(definition, list(range(100)), Functions(w=work))
    holder.append(ex)
    r = ex.run()
    assert r.status == "ABORTED"
    assert done == [0, 1, 2, 3, 4]
    assert len(events(r, "MapIterationStarted")) == 5


def test_stop_frees_the_thread_of_an_execution_waiting_for_a_task_token() -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True}},
    }
    functions = Functions()
    functions.services["arn:aws:states:::sqs:sendMessage.waitForTaskToken"] = lambda params, ctx: {}
    submitted = threading.Event()
    ex = execution(
        definition,
        {},
        functions,
        clock=RealClock(),
        tokens=TokenBroker(),
        listener=lambda e: submitted.set() if e["type"] == "TaskSubmitted" else None,
    )
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(ex.run()))
    thread.start()
    assert submitted.wait(10)
    ex.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert box[0].status == "ABORTED"


def test_every_arn_of_an_execution_names_the_one_local_account() -> None:
    parameters = {"exec.$": "$$.Execution.Id", "role.$": "$$.Execution.RoleArn", "machine.$": "$$.StateMachine.Id"}
    r = execute({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": parameters, "End": True}}})
    assert r.status == "SUCCEEDED"
    assert isinstance(r.output, dict)
    for value in r.output.values():
        assert value.split(":")[4] == ACCOUNT_ID
    assert r.execution_arn.split(":")[3:5] == [REGION, ACCOUNT_ID]
    started = events(r, "ExecutionStarted")[0]["executionStartedEventDetails"]
    assert started["roleArn"].split(":")[4] == ACCOUNT_ID


@pytest.mark.parametrize("clock", [VirtualClock(), RealClock()], ids=["virtual", "real"])
def test_both_clocks_implement_the_whole_protocol(clock: Clock) -> None:
    assert isinstance(clock, Clock)
    with clock.hold()(), clock.busy(), clock.idle():
        pass
    clock.wake()
    assert clock.wait(0, lambda: True) is True
    assert isinstance(clock.virtual, bool)


def test_the_walk_visits_nested_branches_and_processors_in_order() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}],
                "Next": "M",
            },
            "M": {
                "Type": "Map",
                "Iterator": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                "End": True,
            },
        },
    }
    assert [v.where for v in walk_states(definition)] == ["P", "P.Branches[0].A", "M", "M.Iterator.B"]


def test_states_are_parsed_once_into_typed_specs() -> None:
    d = parse_definition(
        {
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": ARN + "f", "TimeoutSeconds": 5, "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "P"}], "Default": "M"},
                "P": {"Type": "Pass", "Result": {"r": 1}, "End": True},
                "M": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                    "End": True,
                },
            },
        }
    )
    task, choice, pass_, map_ = (d.states[n] for n in "TCPM")
    assert isinstance(task, TaskSpec) and task.timeout is not None and task.timeout.value == 5
    assert isinstance(choice, ChoiceSpec) and [c.next for c in choice.choices] == ["P"] and choice.default == "M"
    assert isinstance(pass_, PassSpec) and pass_.result == {"r": 1}
    assert isinstance(map_, MapSpec) and map_.items_path == "$.items" and map_.processor is not None
    with pytest.raises(AttributeError):
        task.next = "elsewhere"  # type: ignore[misc]
