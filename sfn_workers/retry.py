"""Deprecated: the module that is now :mod:`sfn_workers.retries`.

``from sfn_workers.retry import TRANSIENT_AWS`` keeps working, with a ``DeprecationWarning``.
In the package namespace ``sfn_workers.retry`` is the ``retry`` function (it always was), which is
why the module moved: ``sfn_workers.retries.DEFAULT_BUDGET`` is an attribute path that works.
"""

from __future__ import annotations

import warnings

__all__: list[str] = []


def __getattr__(name: str) -> object:
    if name.startswith("__"):  # the import system asks for __path__ and friends: not ours to forward
        raise AttributeError(name)
    from sfn_workers import retries  # on first use: importing sfn_workers imports this module

    value = getattr(retries, name)  # AttributeError for names that never existed
    warnings.warn(
        f"sfn_workers.retry.{name} is deprecated: import it from sfn_workers.retries",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
