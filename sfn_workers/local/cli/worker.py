"""``sfn-workers worker``: run a ``@task`` handler as a Step Functions activity worker.

::

    sfn-workers worker --activity ARN module:handler [--workers N] [--grace SECONDS] [--progress-every N]

Polls GetActivityTask (``AWS_ENDPOINT_URL_SFN`` reaches ``sfn-workers serve`` locally) and runs each
task through the handler in callback mode, until SIGTERM or SIGINT; see :mod:`sfn_workers.activity`.
``module`` is imported from the current directory first, as Lambda imports a handler from its code.
Exit status: 0 after a graceful stop, 2 for bad usage (a handler that cannot be imported or is not a
``@task``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, TextIO

from sfn_workers.local.cli.common import EXIT_OK, Command, UsageError

__all__ = ["COMMAND", "load_handler"]


def _arguments(worker: argparse.ArgumentParser) -> None:
    worker.add_argument("--activity", required=True, metavar="ARN", help="the activity to poll")
    worker.add_argument("handler", metavar="module:handler", help="the @task handler, e.g. jobs:render")
    worker.add_argument("--workers", type=int, default=1, metavar="N", help="tasks run at once (threads; default 1)")
    worker.add_argument(
        "--grace", type=float, default=30.0, metavar="SECONDS", help="time in-flight tasks get after SIGTERM (30)"
    )
    worker.add_argument("--progress-every", type=int, default=100, metavar="N", help="a progress line every N tasks")


def load_handler(spec: str) -> Any:
    """``module:attribute``, imported with the current directory first on the path."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"{spec!r}: give the handler as module:handler")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    handler = getattr(module, attribute, None)
    if handler is None:
        raise UsageError(f"{module_name!r} has no {attribute!r}")
    if getattr(handler, "task", None) is None:
        raise UsageError(f"{spec} is not a @task handler")
    return handler


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from sfn_workers.activity import run_activity_worker

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    handler = load_handler(args.handler)
    err.write(f"sfn-workers worker: {args.handler} on {args.activity} with {args.workers} worker(s)\n")
    stats = run_activity_worker(
        args.activity, handler, workers=args.workers, grace=args.grace, progress_every=args.progress_every
    )
    err.write(stats.line(0) + "\n")
    return EXIT_OK


COMMAND = Command(
    name="worker",
    help="run a @task handler as an activity worker (GetActivityTask until SIGTERM)",
    description="Poll a Step Functions activity and run each task through a @task handler in callback mode: "
    "the same typed input, S3 pointers, heartbeats and exactly one outcome per task as in Lambda.",
    add_arguments=_arguments,
    handler=_run,
)
