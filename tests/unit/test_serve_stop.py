"""StopExecution is final at once, as on AWS, even while an in-process handler is still busy."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/r"
SLOW_TASK = json.dumps(
    {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:slow", "End": True}
        },
    }
)


class BlockingLambda:
    """A handler that cannot be interrupted: it returns only when released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def invoke_lambda(self, call: Any) -> Any:
        self.entered.set()
        self.release.wait(30)
        return {"late": True}

    def call_service(self, resource: str, parameters: Any, context: Mapping[str, Any]) -> Any:
        raise AssertionError("unused")


def test_stop_is_final_while_the_handler_still_runs() -> None:
    from sfn_workers.local import asl
    from sfn_workers.local.api.stepfunctions import LocalStepFunctions

    # GIVEN an execution inside a handler that ignores cancellation
    handler = BlockingLambda()
    service = LocalStepFunctions(lambda clock: handler, asl.TokenBroker(), clock=asl.RealClock)
    machine = service.create_state_machine({"name": "m", "definition": SLOW_TASK, "roleArn": ROLE})["stateMachineArn"]
    arn = service.start_execution({"stateMachineArn": machine, "input": "{}"})["executionArn"]
    assert handler.entered.wait(10)

    # WHEN it is stopped
    stopped = service.stop_execution({"executionArn": arn, "error": "Op", "cause": "enough"})

    # THEN it is ABORTED at once, and stays so when the handler finally returns
    described = service.describe_execution({"executionArn": arn})
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Op", "enough")
    assert described["stopDate"] == stopped["stopDate"]
    handler.release.set()
    service.close(grace=10)
    described = service.describe_execution({"executionArn": arn})
    assert (described["status"], "output" in described) == ("ABORTED", False)
    assert service.history(arn)[-1]["type"] == "ExecutionAborted"
