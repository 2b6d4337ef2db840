"""``sfn-workers serve``: the Step Functions API on this machine (see docs/local-endpoint.md).

Exit status: 0 after a graceful shutdown (SIGINT/SIGTERM), 2 for bad usage (a missing or invalid
template, a state machine that is not valid ASL, an address it cannot listen on).
"""

from __future__ import annotations

import argparse
from typing import TextIO

from sfn_workers.local.api.http import DEFAULT_PORT
from sfn_workers.local.cli.common import (
    Command,
    UsageError,
    add_clock_options,
    add_template_option,
    real_time,
    template_path,
)

__all__ = ["COMMAND"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_template_option(parser)
    parser.add_argument("--port", "-p", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept requests whose Host header names NAME ('*': any); by default only this machine's",
    )
    parser.add_argument(
        "--allow-remote-sns",
        action="store_true",
        help="let SNS http/https subscriptions deliver to other machines (default: loopback URLs only)",
    )
    add_clock_options(parser, real_by_default=True)
    parser.add_argument("--max-executions", type=int, default=64, help="executions running at once (default 64)")
    parser.add_argument(
        "--max-queued",
        type=int,
        default=1000,
        help="executions waiting for a slot; beyond it StartExecution answers ExecutionLimitExceeded (default 1000)",
    )
    parser.add_argument(
        "--mock-config",
        metavar="FILE",
        help="mocked Task responses (AWS Step Functions Local's format); StartExecution of ARN#TestCase runs one",
    )


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from sfn_workers.local.api.protocol import ApiError
    from sfn_workers.local.api.server import serve
    from sfn_workers.local.mock_config import MockConfigError
    from sfn_workers.local.sam import TemplateError

    template = template_path(args.template, required=False)
    if args.max_executions < 1 or args.max_queued < 0:
        raise UsageError("--max-executions must be at least 1 and --max-queued at least 0")

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    try:
        return serve(
            template,
            out=say,
            port=args.port,
            host=args.host,
            allow_hosts=args.allow_host,
            allow_remote_sns=args.allow_remote_sns,
            virtual_time=not real_time(args),
            max_executions=args.max_executions,
            max_queued=args.max_queued,
            mock_config=args.mock_config,
        )
    except (TemplateError, MockConfigError) as exc:
        raise UsageError(str(exc)) from exc
    except ApiError as exc:  # a state machine of the template is not valid ASL
        raise UsageError(f"{template}: {exc.message}") from exc
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc


COMMAND = Command(
    name="serve",
    help="serve the Step Functions API locally (boto3 / AWS CLI with --endpoint-url)",
    description="A local Step Functions API endpoint: the template's state machines are created at start, "
    "executions run in-process against the embedded AWS emulator.",
    add_arguments=_arguments,
    handler=_serve,
)
