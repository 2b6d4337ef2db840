"""Metrics in CloudWatch Embedded Metric Format (EMF): one document per invocation.

An invocation's metrics are summed in a :class:`Recorder` (the current one in a ContextVar) and
written as one EMF document when the invocation ends: one log line, whatever the number of metrics
or retries. The watchdog and heartbeat threads hold the recorder itself (contextvars do not follow a
thread); what they add after the document was written is written at once as a document of its own,
and the watchdog flushes before the sandbox may be frozen, so nothing is lost. Outside an invocation
(a ``@retry`` in a user's own code, a test) each metric is written at once.

Dimensions stay fixed and few (``service``), because each distinct dimension value is a billed
custom metric: an error name or a retry reason is a property of the document (``details``), which
CloudWatch Logs Insights can group by, not a dimension. An error name that means a token or a
payload is at risk (:data:`AT_RISK_ERRORS`) is also a metric of its own, so an alarm can watch it.

The namespace comes from Powertools' configuration: a ``Metrics`` object given to ``@task(metrics=...)``
(a namespace set in code), else ``POWERTOOLS_METRICS_NAMESPACE``, else ``sfn-workers``. The document
is built here rather than through Powertools' ``single_metric``: importing Powertools' metrics costs
a cold start more than this module does, and Powertools would write one document per metric.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

__all__ = [
    "AT_RISK_ERRORS",
    "METRICS",
    "NAMESPACE_DEFAULT",
    "URGENT",
    "Recorder",
    "begin",
    "count",
    "current",
    "emit",
    "end",
    "failed",
    "invocation",
]

NAMESPACE_DEFAULT = "sfn-workers"

#: Error names that mean a task token or a payload is at risk: each is also counted as a metric of
#: that name (besides the ``details`` of the metric that carried it), for alarms.
AT_RISK_ERRORS = frozenset({"WorkerTimeout", "PayloadPointerError", "CallbackDeliveryError"})

#: Metrics written at once even inside an invocation: the watchdog fires just before Lambda may
#: freeze or end the sandbox, so the invocation's own document might never be written.
URGENT = frozenset({"WatchdogFired"})

#: Every metric the framework emits: name -> (unit, when). docs/operations.md lists the same table.
METRICS: Mapping[str, tuple[str, str]] = {
    "CallbackSuccess": ("Count", "SendTaskSuccess accepted"),
    "CallbackFailure": ("Count", "SendTaskFailure accepted (details: error)"),
    "CallbackTokenClosed": ("Count", "the token was already closed (TaskTimedOut, TaskDoesNotExist)"),
    "CallbackUndeliverable": ("Count", "no outcome could be delivered: the invocation raised for a retry"),
    "CallbackHandedOff": ("Count", "a task handed its token off (ctx.hand_off()): someone else reports"),
    "WatchdogFired": ("Count", "a callback task was still running timeout_margin_ms before the Lambda timeout"),
    "Heartbeats": ("Count", "SendTaskHeartbeat accepted"),
    "Retries": ("Count", "a downstream call was retried (details: reason)"),
    "RetriesRefused": ("Count", "a retry was not made (details: cause = deadline or budget)"),
    "OffloadedBytes": ("Bytes", "bytes written to S3 for an output"),
    "OffloadedPointers": ("Count", "objects written to S3 for an output"),
    "OffloadedItemsBytes": ("Bytes", "bytes written by write_items"),
    "OffloadedItemsObjects": ("Count", "objects written by write_items"),
    "ResolvedBytes": ("Bytes", "bytes read from S3 to resolve pointers in an input"),
    "ResolvedPointers": ("Count", "pointers resolved in an input"),
    "RetryBudgetExhausted": ("Count", "the retry budget refused a retry (a dependency is failing)"),
    "Errors": ("Count", "an invocation ended with an exception (details: error)"),
    **{name: ("Count", f"{name}: a token or payload at risk") for name in sorted(AT_RISK_ERRORS)},
}


class _HasNamespace(Protocol):
    namespace: str | None


Writer = Callable[[str], None]


def _stdout(line: str) -> None:
    """One write per document, so lines from threads never interleave (print writes twice)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Recorder:
    """The metrics of one invocation, written as one EMF document by :meth:`flush`."""

    def __init__(
        self,
        *,
        metrics: _HasNamespace | None = None,
        service: str | None = None,
        write: Writer = _stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics_config = metrics
        self._service = service
        self._write = write
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._units: dict[str, str] = {}
        self._details: dict[str, dict[str, dict[str, int]]] = {}
        self._flushed = False
        self.documents = 0

    def add(self, name: str, value: float, unit: str = "Count", **details: str) -> None:
        """Add to ``name``; ``details`` are counted by value under the metric (not dimensions)."""
        with self._lock:
            self._add(name, value, unit, details)
            for key, detail in details.items():
                if key == "error" and detail in AT_RISK_ERRORS and detail != name:
                    self._add(detail, 1, "Count", {})
            late = self._flushed or name in URGENT
        if late:  # a thread that outlived the invocation's document: its own document, at once
            self.flush(force=True)

    def _add(self, name: str, value: float, unit: str, details: Mapping[str, str]) -> None:
        self._values[name] = self._values.get(name, 0) + value
        self._units[name] = unit
        for key, detail in details.items():
            by_value = self._details.setdefault(name, {}).setdefault(key, {})
            by_value[detail] = by_value.get(detail, 0) + 1

    def flush(self, *, force: bool = False) -> None:
        """Write what was gathered as one document (nothing when nothing was gathered)."""
        with self._lock:
            if self._flushed and not force:
                return
            self._flushed = True
            values, units, details = self._values, self._units, self._details
            self._values, self._units, self._details = {}, {}, {}
        if values:
            self._write(self.document(values, units, details))
            self.documents += 1

    def document(self, values: Mapping[str, float], units: Mapping[str, str], details: Mapping[str, Any]) -> str:
        service = self._service or os.environ.get("POWERTOOLS_SERVICE_NAME") or NAMESPACE_DEFAULT
        directive = {
            "Namespace": self.namespace(),
            "Dimensions": [["service"]],
            "Metrics": [{"Name": name, "Unit": units[name]} for name in sorted(values)],
        }
        body: dict[str, Any] = {
            "_aws": {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": [directive]},
            "service": service,
            **{name: values[name] for name in sorted(values)},
        }
        if details:
            body["details"] = details
        return json.dumps(body, separators=(",", ":"))

    def namespace(self) -> str:
        """Read at each document, so a namespace set on the Metrics object after decoration counts."""
        configured = getattr(self._metrics_config, "namespace", None)
        return configured or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE_DEFAULT


_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("sfn_workers_metrics", default=None)


def current() -> Recorder | None:
    """The recorder of the invocation running in this context, if any (threads take it along)."""
    return _current.get()


def begin(recorder: Recorder) -> contextvars.Token[Recorder | None]:
    """Make ``recorder`` the current invocation's (the decorator's hot path: no generator)."""
    return _current.set(recorder)


def failed(recorder: Recorder, exc: BaseException) -> None:
    """Count an exception leaving the invocation (``Errors``, details ``error``)."""
    name = getattr(exc, "error_name", None) or getattr(exc, "error", None) or type(exc).__name__
    recorder.add("Errors", 1, "Count", error=str(name)[:256])


def end(token: contextvars.Token[Recorder | None], recorder: Recorder) -> None:
    """Write the invocation's document and restore the previous recorder."""
    _current.reset(token)
    recorder.flush()


@contextlib.contextmanager
def invocation(recorder: Recorder) -> Iterator[Recorder]:
    """Gather this invocation's metrics in ``recorder``; write them as one document at the end.

    An exception passing through is counted (``Errors``, details ``error``: its class name, or a
    ``TaskFailure``'s error name) before the document is written.
    """
    token = begin(recorder)
    try:
        yield recorder
    except BaseException as exc:
        failed(recorder, exc)
        raise
    finally:
        end(token, recorder)


def emit(name: str, value: float, unit: str = "Count", **details: str) -> None:
    """Add ``value`` to ``name`` in the current invocation's document (or write one at once)."""
    recorder = _current.get()
    if recorder is not None:
        recorder.add(name, value, unit, **details)
        return
    alone = Recorder()
    alone.add(name, value, unit, **details)
    alone.flush()


def count(name: str, **details: str) -> None:
    """Count one occurrence of ``name``."""
    emit(name, 1, "Count", **details)
