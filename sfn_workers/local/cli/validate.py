"""``sfn-workers validate [--template FILE | DEFINITION]``: the interpreter's definition check for
CI and ``make validate``. Prints one line per diagnostic (``where: SEVERITY CODE at LOCATION: message``)
and exits 1 when any is an ERROR."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from sfn_workers.local.cli.common import EXIT_FAILED, EXIT_OK, Command, UsageError, add_template_option, template_path
from sfn_workers.local.validation import Diagnostic, diagnose_file

__all__ = ["COMMAND"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_template_option(parser, "SAM template whose state machines to check")
    parser.add_argument(
        "definition", nargs="?", metavar="DEFINITION", help="an ASL definition file instead of a template"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the diagnostics as JSON (ValidateStateMachineDefinition's shape)"
    )


def _line(where: Path, found: Diagnostic) -> str:
    machine = f"{found.state_machine}: " if found.state_machine else ""
    return f"{where}: {machine}{found.severity} {found.code} at {found.location}: {found.message}"


def _validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.definition is not None and args.template is not None:
        raise UsageError("give either --template FILE or a DEFINITION file, not both")
    if args.definition is not None:
        path = Path(args.definition)
        if not path.is_file():
            raise UsageError(f"definition not found: {args.definition}")
    else:
        found_path = template_path(args.template)
        assert found_path is not None
        path = found_path
    diagnostics = diagnose_file(path)
    errors = [d for d in diagnostics if d.severity == "ERROR"]
    if args.json:
        result = "FAIL" if errors else "OK"
        rows = [{**d.as_dict(), **({"stateMachine": d.state_machine} if d.state_machine else {})} for d in diagnostics]
        out.write(json.dumps({"result": result, "diagnostics": rows}, indent=2) + "\n")
    else:
        for found in diagnostics:
            (err if found.severity == "ERROR" else out).write(_line(path, found) + "\n")
        if not errors:
            out.write(f"{path}: OK\n")
    return EXIT_FAILED if errors else EXIT_OK


COMMAND = Command(
    name="validate",
    help="check state machine definitions (a template's or one file) as Step Functions would",
    description="Check every state machine of a SAM template, or one ASL definition file, with the local "
    "interpreter's validator. Exit status 1 when a definition has an error.",
    add_arguments=_arguments,
    handler=_validate,
)
