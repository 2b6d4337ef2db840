"""What every ``sfn-workers`` subcommand shares: exit statuses, usage errors, the template default,
the clock choice, and the subcommand registry's entry type."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "UsageError",
    "add_clock_options",
    "add_template_option",
    "real_time",
    "template_path",
]

#: Exit statuses of every subcommand: done, failed (an execution failed, a check found problems), bad usage.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DEFAULT_TEMPLATE = "template.yaml"


class UsageError(Exception):
    """Bad command-line usage: printed as ``sfn-workers: error: <message>``, exit status 2."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, help, arguments and handler (``handler(args, out, err) -> exit status``,
    raising :class:`UsageError` for bad usage). Each lives in its own module of this package."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace, TextIO, TextIO], int]


def add_template_option(parser: argparse.ArgumentParser, what: str = "SAM template") -> None:
    parser.add_argument(
        "--template", "-t", metavar="FILE", help=f"{what} (default: {DEFAULT_TEMPLATE} in the current directory)"
    )


def template_path(option: str | None, *, required: bool = True) -> Path | None:
    """The template a command uses: ``--template`` (which must exist), else ``template.yaml`` here;
    without either, a usage error if ``required``, else None."""
    if option is not None:
        path = Path(option)
        if not path.is_file():
            raise UsageError(f"template not found: {option}")
        return path
    default = Path(DEFAULT_TEMPLATE)
    if default.is_file():
        return default
    if required:
        raise UsageError(f"no {DEFAULT_TEMPLATE} in {Path.cwd()}: pass --template FILE")
    return None


def add_clock_options(parser: argparse.ArgumentParser, *, real_by_default: bool) -> None:
    """``--real-time`` / ``--virtual-time``: the same choice in every command, each with its default."""
    group = parser.add_mutually_exclusive_group()
    default = " (default)"
    group.add_argument(
        "--real-time",
        dest="real_time",
        action="store_true",
        default=real_by_default,
        help="Wait states, retry intervals and timeouts take real time" + (default if real_by_default else ""),
    )
    group.add_argument(
        "--virtual-time",
        dest="real_time",
        action="store_false",
        help="each execution on its own virtual clock: waits and retries take no real time, and a task-token "
        "wait nothing in-process answers times out at once" + ("" if real_by_default else default),
    )


def real_time(args: argparse.Namespace) -> bool:
    return bool(args.real_time)
