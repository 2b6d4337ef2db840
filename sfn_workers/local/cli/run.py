"""``sfn-workers run``: run the template's state machine on this machine, no AWS account, no Docker.

::

    sfn-workers run [--template template.yaml] [--state-machine NAME] --input FILE|JSON
                    [--real-time] [--history [FILE]] [--graph [FILE]] [--output-dir DIR] [--quiet] [--logs]
                    [--transport in-process|http]
                    [--mock-config FILE --test-case NAME]
                    [--approve STATE[:REVIEWER]] [--reject STATE[:REVIEWER]] [--answers FILE]

Progress goes to stderr (one line per state entered and left, with the execution's clock and the
state's duration; a progress bar for a Map), the execution's output to stdout as JSON, so
``sfn-workers run ... > output.json`` keeps just the output. Exit status: 0 when the execution
succeeded, 1 when it failed (timed out, aborted), 2 for bad usage: a missing file, a template
without a state machine, a Task whose Resource no function of the template matches, an invalid
definition (the message names the state and the field).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sfn_workers.local.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Command,
    UsageError,
    add_clock_options,
    add_template_option,
    real_time,
    template_path,
)
from sfn_workers.local.cli.progress import Progress, duration

__all__ = ["COMMAND"]

GRAPH_SUFFIXES = (".md", ".html", ".htm", ".svg")
DEFAULT_HISTORY, DEFAULT_GRAPH = "history.json", "graph.html"


def _arguments(run: argparse.ArgumentParser) -> None:
    add_template_option(run, "SAM template or ASL definition")
    run.add_argument("--state-machine", "-s", metavar="NAME", help="which state machine, if the template has several")
    run.add_argument("--input", "-i", metavar="FILE|JSON", help="execution input: a JSON file or JSON text")
    add_clock_options(run, real_by_default=False)
    run.add_argument(
        "--history",
        metavar="FILE",
        nargs="?",
        const=DEFAULT_HISTORY,
        help=f"write the execution history (JSON) to FILE (default name {DEFAULT_HISTORY})",
    )
    run.add_argument(
        "--graph",
        metavar="FILE",
        nargs="?",
        const=DEFAULT_GRAPH,
        help=f"draw the path taken: FILE.md (Mermaid), .html or .svg (default name {DEFAULT_GRAPH})",
    )
    run.add_argument(
        "--output-dir",
        "-o",
        metavar="DIR",
        help="where --history and --graph files go (created if missing; default: the current directory)",
    )
    run.add_argument("--name", metavar="NAME", help="execution name (default: a UUID)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines, just the result")
    run.add_argument("--logs", action="store_true", help="show the handlers' own log lines (stderr)")
    run.add_argument(
        "--transport",
        choices=("in-process", "http"),
        default="in-process",
        help="how the handlers' AWS calls reach the embedded emulator: in this process (default) or over HTTP",
    )
    run.add_argument("--mock-config", metavar="FILE", help="mocked Task responses (AWS Step Functions Local's format)")
    run.add_argument("--test-case", metavar="NAME", help="the test case of --mock-config to run")
    decide = "through the template's ApprovalDecisionFunction, as a person would (docs/sample.md)"
    run.add_argument(
        "--approve", action="append", metavar="STATE[:REVIEWER]", help=f"approve a hand-off state {decide}"
    )
    run.add_argument("--reject", action="append", metavar="STATE[:REVIEWER]", help=f"reject a hand-off state {decide}")
    run.add_argument(
        "--answers", metavar="FILE", help='decisions from a JSON file: {"STATE": true | {"approved": ...}}'
    )


def read_input(text: str | None) -> Any:
    """``--input``: a JSON file, or JSON text."""
    if text is None:
        return {}
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # JSON text longer than a file name may be
        is_file = False
    if is_file:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"--input {text}: not valid JSON: {exc}") from exc
        except OSError as exc:
            raise UsageError(f"--input {text}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    raise UsageError(f"--input {text}: no such file, and not JSON text either")


def _approvals(args: argparse.Namespace) -> Any:
    """The decisions of --approve/--reject/--answers, or None."""
    if not (args.approve or args.reject or args.answers):
        return None
    from sfn_workers.local.approvals import Approvals, answers_from_options

    try:
        return Approvals(answers_from_options(args.approve, args.reject, args.answers))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--approve/--reject/--answers: {exc}") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _open_runner(args: argparse.Namespace) -> Any:
    from sfn_workers.local.asl import DefinitionError
    from sfn_workers.local.mock_config import MockConfigError
    from sfn_workers.local.runner import LocalRunner
    from sfn_workers.local.sam import TemplateError

    template = template_path(args.template)
    assert template is not None
    if (args.mock_config is None) != (args.test_case is None):
        raise UsageError("--mock-config FILE and --test-case NAME go together")
    try:
        return LocalRunner(
            template,
            state_machine=args.state_machine,
            real_time=real_time(args),
            transport=args.transport,
            mock_config=args.mock_config,
            test_case=args.test_case,
        )
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    except DefinitionError as exc:
        raise UsageError(f"invalid state machine definition: {exc}") from exc
    except (TemplateError, MockConfigError) as exc:
        raise UsageError(str(exc)) from exc


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.graph and Path(args.graph).suffix.lower() not in GRAPH_SUFFIXES:
        raise UsageError(f"--graph {args.graph}: use a .md, .html or .svg file name")
    if args.input is None:
        raise UsageError("--input FILE|JSON is required (the execution input)")
    value = read_input(args.input)
    approvals = _approvals(args)
    runner = _open_runner(args)
    real = real_time(args)
    listener = None if args.quiet else Progress(runner.document, err, real=real)
    if not args.quiet:
        err.write(f"sfn-workers run: {runner.name} from {runner.source} ({'real time' if real else 'virtual clock'})\n")
    # Handlers log to stdout (as in Lambda); here stdout is for the output: their logs go to stderr
    # with --logs, else nowhere (the final status, error and cause say what went wrong).
    logs: TextIO = err if args.logs else io.StringIO()
    with contextlib.redirect_stdout(logs), runner:
        began = time.perf_counter()
        result = runner.run(value, name=args.name, listener=listener, approvals=approvals)
        took = time.perf_counter() - began
    for response in approvals.responses if approvals is not None else []:
        err.write(f"decision for {response.state}: {response.status} {json.dumps(response.body)}\n")
    summary = f"{result.status} in {duration(took)}"
    if not real:
        summary += f" ({duration((result.stop - result.start).total_seconds())} of execution time)"
    err.write(summary + "\n")
    if result.status != "SUCCEEDED":
        from sfn_workers.local.graph import trace

        where = trace(result.history).failed_state
        err.write(f"failed in state: {where}\n" if where else "")
        err.write("".join(line + "\n" for line in describe_failure(result.error, result.cause)))
    else:
        out.write(json.dumps(result.output, indent=2, ensure_ascii=False) + "\n")
    _write_extras(args, runner, result, err)
    return EXIT_OK if result.status == "SUCCEEDED" else EXIT_FAILED


def describe_failure(error: str | None, cause: str | None) -> list[str]:
    """``error: Name: message`` and the stack trace indented under it, from a Lambda-style JSON cause.

    A cause that is not such JSON is shown as it is (``--history`` keeps the full JSON either way).
    """
    try:
        detail = json.loads(cause or "")
    except (TypeError, ValueError):
        detail = None
    if not isinstance(detail, dict) or "errorMessage" not in detail:
        return [f"error: {error}", *(f"cause: {cause}".splitlines() if cause else [])]
    lines = [f"error: {error}: {detail['errorMessage']}"]
    stack = detail.get("stackTrace")
    if isinstance(stack, list) and stack:
        lines.append("    Traceback (most recent call last):")
        for frame in stack:
            text = frame if isinstance(frame, str) else "  ".join(map(str, frame))
            lines += ["    " + part for part in text.rstrip("\n").splitlines() if part.strip()]
    return lines


def _output(name: str, args: argparse.Namespace, err: TextIO) -> Path:
    """Where ``--history``/``--graph`` write: under ``--output-dir`` when given, else the current directory."""
    path = Path(name)
    if args.output_dir:
        folder = Path(args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return path if path.is_absolute() else folder / path
    if not path.is_absolute() and len(path.parts) == 1:
        err.write(f"note: writing {name} to the current directory ({Path.cwd()}); --output-dir DIR to choose\n")
    return path


def _write_extras(args: argparse.Namespace, runner: Any, result: Any, err: TextIO) -> None:
    if args.history:
        history = _output(args.history, args, err)
        history.write_text(json.dumps(result.history, indent=2, default=_json_default), encoding="utf-8")
        err.write(f"history: {history} ({len(result.history)} events)\n")
    if args.graph:
        from sfn_workers.local.graph import write_graph

        written = write_graph(_output(args.graph, args, err), runner.document, result, machine=runner.name)
        err.write(f"graph: {', '.join(str(p) for p in written)}\n")


COMMAND = Command(
    name="run",
    help="run a state machine locally (handlers in-process, AWS services emulated)",
    description="Run the template's state machine locally: handlers run in this process, S3/SQS/SNS/DynamoDB "
    "on an embedded emulator, Wait states and retries on a virtual clock.",
    add_arguments=_arguments,
    handler=_run,
)
