"""The ``sfn-workers`` command line: one parser, one subcommand per module of this package.

Each subcommand is a :class:`~.common.Command` (name, help, arguments, handler) in its own module;
:data:`COMMANDS` lists them. To add one, write ``cli/<name>.py`` with a ``COMMAND`` and add it here.
Every subcommand shares the exit statuses (0 ok, 1 failed, 2 bad usage), the template default
(``template.yaml`` in the current directory) and the clock options (``--real-time``/``--virtual-time``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from sfn_workers.local.cli import estimate, run, serve, validate, worker
from sfn_workers.local.cli.common import EXIT_USAGE, Command, UsageError
from sfn_workers.local.cli.progress import Progress

__all__ = ["COMMANDS", "Progress", "main"]

#: The subcommands, in the order ``--help`` lists them.
COMMANDS: tuple[Command, ...] = (run.COMMAND, serve.COMMAND, validate.COMMAND, estimate.COMMAND, worker.COMMAND)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sfn-workers")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfn-workers", description="sfn-workers: typed, fault-tolerant Lambda workers for Step Functions."
    )
    parser.add_argument("--version", action="version", version=f"sfn-workers {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``sfn-workers`` console script; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    command = next((c for c in COMMANDS if c.name == args.command), None)
    if command is None:
        parser.print_help(err)
        return EXIT_USAGE
    try:
        return command.handler(args, out, err)
    except UsageError as exc:
        err.write(f"sfn-workers: error: {exc}\n")
        return EXIT_USAGE
