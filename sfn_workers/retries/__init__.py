"""Jittered, deadline-aware, budgeted retries for downstream calls.

``retry(...)`` builds a :class:`RetryPolicy`: a decorator for sync and async functions, and a
helper for one call (``policy.call(fn, ...)``, ``await policy.acall(fn, ...)``). The parts:

* :mod:`~sfn_workers.retries.classify`: which failures are worth another try (``on``, default
  :data:`TRANSIENT_AWS`);
* :mod:`~sfn_workers.retries.jitter`: how long to wait (:func:`full_jitter` and friends);
* :mod:`~sfn_workers.retries.budget`: the per-process :class:`RetryBudget` (:data:`DEFAULT_BUDGET`);
* :mod:`~sfn_workers.retries.policy`: the attempt loop, the deadline, the observer.

This module is ``sfn_workers.retries`` (plural) so that its name does not collide with the
function ``sfn_workers.retry``; ``sfn_workers.retries.DEFAULT_BUDGET`` and friends are the
documented paths.
"""

from __future__ import annotations

from sfn_workers.retries.budget import DEFAULT_BUDGET, RetryBudget
from sfn_workers.retries.classify import (
    THROTTLING_CODES,
    TRANSIENT_AWS,
    TRANSIENT_CODES,
    RetryOn,
    TransientAwsErrors,
    classify_aws,
    retry_after,
)
from sfn_workers.retries.jitter import Strategy, decorrelated_jitter, equal_jitter, full_jitter, no_jitter
from sfn_workers.retries.policy import RetryEvent, RetryPolicy, log_retry, retry

__all__ = [
    "DEFAULT_BUDGET",
    "THROTTLING_CODES",
    "TRANSIENT_AWS",
    "TRANSIENT_CODES",
    "RetryBudget",
    "RetryEvent",
    "RetryOn",
    "RetryPolicy",
    "Strategy",
    "TransientAwsErrors",
    "classify_aws",
    "decorrelated_jitter",
    "equal_jitter",
    "full_jitter",
    "log_retry",
    "no_jitter",
    "retry",
    "retry_after",
]
