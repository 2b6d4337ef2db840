"""The local Step Functions API (``sfn-workers serve``): protocol, backend, HTTP server.

- :mod:`.protocol`: AWS JSON 1.0 (requests, validation, error shapes); :mod:`.http`: the HTTP server.
- :mod:`.backend`: state machines, executions, the action registry; :mod:`.models`, :mod:`.pool`,
  :mod:`.retention`: its records, threads and what it keeps.
- :mod:`.machines`, :mod:`.executions`, :mod:`.task_tokens`: the actions; :mod:`.stepfunctions`:
  :class:`LocalStepFunctions`, the backend serving them all; :mod:`.server`: :func:`start_server`.

This package's ``__init__`` imports nothing, so the interpreter's modules can use the protocol's
error type without importing the server.
"""
