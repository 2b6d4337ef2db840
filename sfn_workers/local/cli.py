"""``sfn-workers run``: run the template's state machine on this machine, no AWS account, no Docker.

::

    sfn-workers run [--template template.yaml] [--state-machine NAME] --input FILE|JSON
                    [--real-time] [--history FILE] [--graph FILE] [--quiet] [--logs] [--transport in-process|http]

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
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Progress", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage: printed as ``sfn-workers: error: <message>``, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfn-workers", description="sfn-workers: typed, fault-tolerant Lambda workers for Step Functions."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a state machine locally (handlers in-process, AWS services emulated)",
        description="Run the template's state machine locally: handlers run in this process, S3/SQS/SNS/DynamoDB "
        "on an embedded emulator, Wait states and retries on a virtual clock.",
    )
    run.add_argument(
        "--template", "-t", metavar="FILE", help="SAM template (default: template.yaml in the current directory)"
    )
    run.add_argument("--state-machine", "-s", metavar="NAME", help="which state machine, if the template has several")
    run.add_argument("--input", "-i", metavar="FILE|JSON", help="execution input: a JSON file or JSON text")
    run.add_argument("--real-time", action="store_true", help="really wait in Wait states and retry intervals")
    run.add_argument("--history", metavar="FILE", help="write the execution history (JSON) to FILE")
    run.add_argument("--graph", metavar="FILE", help="draw the path taken: FILE.md (Mermaid), .html or .svg")
    run.add_argument("--name", metavar="NAME", help="execution name (default: a UUID)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines, just the result")
    run.add_argument("--logs", action="store_true", help="show the handlers' own log lines (stderr)")
    run.add_argument(
        "--transport",
        choices=("in-process", "http"),
        default="in-process",
        help="how the handlers' AWS calls reach the embedded emulator: in this process (default) or over HTTP",
    )
    from sfn_workers.local.service import add_serve_parser

    add_serve_parser(commands)  # sfn-workers serve: the local Step Functions API (service.py)
    return parser


def _read_input(text: str | None) -> Any:
    if text is None:
        return {}
    path = Path(text)
    if path.is_file():
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


def _template_path(option: str | None) -> Path:
    if option is not None:
        path = Path(option)
        if not path.is_file():
            raise UsageError(f"template not found: {option}")
        return path
    default = Path("template.yaml")
    if not default.is_file():
        raise UsageError(f"no template.yaml in {Path.cwd()}: pass --template FILE")
    return default


# -- live progress ---------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    """Elapsed execution time: ``00:00:01.250``, with days when there are any (``2d 01:00:00.000``)."""
    days, rest = divmod(max(0.0, seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    text = f"{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}"
    return f"{int(days)}d {text}" if days else text


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3_600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86_400:
        return f"{int(seconds // 3_600)} h {int(seconds % 3_600 // 60)} min"
    return f"{int(seconds // 86_400)} d {int(seconds % 86_400 // 3_600)} h"


def _inside_maps(definition: Mapping[str, Any]) -> set[str]:
    """Names of the states inside Map processors (their lines give way to the Map's progress bar)."""
    from sfn_workers.local.sam import iter_states

    inner: set[str] = set()
    for _, state in iter_states(definition):
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            if isinstance(processor, Mapping):
                inner.update(name for name, _ in iter_states(processor))
    return inner


# Failure events that are not a state's own: the execution's, a Map iteration's, and the
# Parallel/Map summary events (whose previousEventId is not in their own branch).
_NOT_A_STATE_FAILURE = ("Execution", "MapIteration", "ParallelState", "MapState")


class Progress:
    """A history listener that prints one line per state entered and left, and a bar per Map.

    State names are unique in a whole state machine (ASL requires it), so lines are keyed by name.
    """

    BAR = 24

    def __init__(
        self, definition: Mapping[str, Any], out: TextIO | None = None, tty: bool | None = None, real: bool = True
    ) -> None:
        """``real=False`` (a virtual clock): durations also show the real time the state took."""
        self.out = out or sys.stderr
        self.real = real
        self.real_entered: dict[str, float] = {}
        self.tty = self.out.isatty() if tty is None else tty
        self.hidden = _inside_maps(definition)
        self.start: datetime | None = None
        self.entered: dict[str, datetime] = {}
        self.state_of: dict[int, str] = {}
        self.maps: dict[str, list[int]] = {}  # name -> [done, total, last printed step]
        self.open_map: list[str] = []
        self._failed_event: dict[int, str] = {}  # id of a failure event -> its error (to tell retries)
        self._lock = threading.Lock()

    def _at(self, event: Mapping[str, Any]) -> str:
        assert self.start is not None
        return _clock((event["timestamp"] - self.start).total_seconds())

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            self._event(event)

    def _event(self, event: Mapping[str, Any]) -> None:
        kind: str = event["type"]
        if self.start is None:
            self.start = event["timestamp"]
        previous = self.state_of.get(event.get("previousEventId", 0))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.state_of[event["id"]] = name
            self.entered[name] = event["timestamp"]
            self.real_entered[name] = time.perf_counter()
            if name not in self.hidden:
                self._print(f"{self._at(event)}  ▶ {name} ({kind[: -len('StateEntered')]})")
            return
        if kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            began = self.entered.pop(name, event["timestamp"])
            real = time.perf_counter() - self.real_entered.pop(name, time.perf_counter())
            if name not in self.hidden:
                took = _duration((event["timestamp"] - began).total_seconds())
                if not self.real:
                    took += f" (real {_duration(real)})"
                self._print(f"{self._at(event)}  ✔ {name}  {took}")
            return
        if previous is not None:
            self.state_of[event["id"]] = previous
        if kind in ("LambdaFunctionScheduled", "TaskScheduled") and previous is not None:
            before = event.get("previousEventId", 0)
            if self._failed_event.get(before) and previous not in self.hidden:
                self._print(f"{self._at(event)}  ↻ {previous}  retry after {self._failed_event[before]}")
        elif kind.endswith(("Failed", "TimedOut")) and not kind.startswith(_NOT_A_STATE_FAILURE):
            details: Mapping[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error = details.get("error") or kind
            self._failed_event[event["id"]] = str(error)
            if previous is not None and previous not in self.hidden:
                self._print(f"{self._at(event)}  ✘ {previous}  {error}")
        if kind == "MapStateStarted":
            name = previous or "Map"
            total = int((event.get("mapStateStartedEventDetails") or {}).get("length", 0))
            self.maps[name] = [0, total, -1]
            self.open_map.append(name)
            self._bar(name)
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            name = (event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}).get("name") or (
                self.open_map[-1] if self.open_map else None
            )
            if name in self.maps:
                self.maps[name][0] += 1
                self._bar(name)
        elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted") and self.open_map:
            self.open_map.pop()
            if self.tty:
                self.out.write("\n")

    def _bar(self, name: str) -> None:
        done, total, last = self.maps[name]
        filled = self.BAR if total == 0 else int(self.BAR * done / total)
        bar = f"    {name} [{'#' * filled}{'-' * (self.BAR - filled)}] {done}/{total}"
        if self.tty:
            self.out.write("\r" + bar)
            self.out.flush()
            return
        step = 4 if total == 0 else int(4 * done / total)  # a line at 0, 25, 50, 75 and 100 %
        if step != last:
            self.maps[name][2] = step
            self._print(bar)


# -- the command -----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from sfn_workers.local.asl import DefinitionError
    from sfn_workers.local.runner import LocalRunner
    from sfn_workers.local.sam import TemplateError

    if args.input is None:
        raise UsageError("--input FILE|JSON is required (the execution input)")
    value = _read_input(args.input)
    template = _template_path(args.template)
    try:
        runner = LocalRunner(
            template, state_machine=args.state_machine, real_time=args.real_time, transport=args.transport
        )
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    except DefinitionError as exc:
        raise UsageError(f"invalid state machine definition: {exc}") from exc
    except TemplateError as exc:
        raise UsageError(str(exc)) from exc
    listener = None if args.quiet else Progress(runner.document, err, real=args.real_time)
    if not args.quiet:
        clock = "real time" if args.real_time else "virtual clock"
        err.write(f"sfn-workers run: {runner.name} from {runner.source} ({clock})\n")
    # Handlers log to stdout (as in Lambda); here stdout is for the output: their logs go to stderr
    # with --logs, else nowhere (the final status, error and cause say what went wrong).
    logs: TextIO = err if args.logs else io.StringIO()
    with contextlib.redirect_stdout(logs), runner:
        began = time.perf_counter()
        result = runner.run(value, name=args.name, listener=listener)
        took = time.perf_counter() - began
    virtual = (result.stop - result.start).total_seconds()
    summary = f"{result.status} in {_duration(took)}"
    if not args.real_time:
        summary += f" ({_duration(virtual)} of execution time)"
    err.write(summary + "\n")
    if result.status != "SUCCEEDED":
        from sfn_workers.local.graph import trace

        where = trace(result.history).failed_state
        err.write(f"failed in state: {where}\n" if where else "")
        err.write(f"error: {result.error}\ncause: {result.cause}\n")
    else:
        out.write(json.dumps(result.output, indent=2, ensure_ascii=False) + "\n")
    if args.history:
        Path(args.history).write_text(json.dumps(result.history, indent=2, default=_json_default), encoding="utf-8")
        err.write(f"history: {args.history} ({len(result.history)} events)\n")
    if args.graph:
        from sfn_workers.local.graph import write_graph

        written = write_graph(args.graph, runner.document, result)
        err.write(f"graph: {', '.join(str(p) for p in written)}\n")
    return EXIT_OK if result.status == "SUCCEEDED" else EXIT_FAILED


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``sfn-workers`` console script; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return int(args.command_function(args))
    if args.command != "run":
        parser.print_help(err)
        return EXIT_USAGE
    if args.graph and Path(args.graph).suffix.lower() not in (".md", ".html", ".htm", ".svg"):
        err.write(f"sfn-workers: error: --graph {args.graph}: use a .md, .html or .svg file name\n")
        return EXIT_USAGE
    try:
        return _run(args, out, err)
    except UsageError as exc:
        err.write(f"sfn-workers: error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
