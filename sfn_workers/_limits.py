"""AWS Step Functions' documented limits, each defined once for the runtime and the local runner.

The runtime truncates and offloads to stay inside them; the local runner enforces them the way AWS
does, because the emulators it builds on (moto) do not.
"""

from __future__ import annotations

__all__ = [
    "ARN_MAX_CHARS",
    "ARRAY_RANGE_MAX_ITEMS",
    "CAUSE_MAX_CHARS",
    "ERROR_MAX_CHARS",
    "HISTORY_EVENTS_MAX",
    "INTRINSIC_TEXT_MAX_CHARS",
    "PAYLOAD_MAX_BYTES",
    "TASK_TOKEN_MAX_CHARS",
]

#: A state's input or output, a Task's result, SendTaskSuccess's output: UTF-8 bytes of the JSON text.
PAYLOAD_MAX_BYTES = 262_144
#: ``error`` of SendTaskFailure, a Fail state, a Lambda errorType as Step Functions keeps it.
ERROR_MAX_CHARS = 256
#: ``cause`` of SendTaskFailure and a Fail state.
CAUSE_MAX_CHARS = 32_768
#: A task token as SendTask* accept it.
TASK_TOKEN_MAX_CHARS = 2_048
#: An ARN as the API accepts it.
ARN_MAX_CHARS = 256
#: Events in one execution's history; one more fails the execution (States.Runtime on AWS).
HISTORY_EVENTS_MAX = 25_000
#: Items States.ArrayRange (and JSONata's $range in Step Functions) may produce.
ARRAY_RANGE_MAX_ITEMS = 1_000
#: Characters of the input of States.Base64Encode, States.Base64Decode and States.Hash.
INTRINSIC_TEXT_MAX_CHARS = 10_000
