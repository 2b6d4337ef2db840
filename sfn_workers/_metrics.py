"""Metrics in CloudWatch Embedded Metric Format through Powertools, emitted as they happen.

Each metric is written at once (Powertools ``single_metric``) rather than buffered per invocation:
the watchdog and heartbeat threads emit too, and nothing is lost if the process is then frozen.
Nothing is emitted on the hot path of a small direct-mode call.
"""

from __future__ import annotations

import os

__all__ = ["NAMESPACE_DEFAULT", "count", "emit"]

NAMESPACE_DEFAULT = "sfn-workers"


def emit(name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
    """Write one metric with its own dimensions (e.g. ``error=WorkerTimeout``)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE_DEFAULT
    with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=namespace) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def count(name: str, **dimensions: str) -> None:
    """Count one occurrence of ``name``."""
    emit(name, 1, "Count", **dimensions)
