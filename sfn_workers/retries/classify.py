"""What is worth another try: :data:`TRANSIENT_AWS` and the ``on=`` forms ``retry`` accepts.

The AWS error codes themselves are read in :mod:`sfn_workers._botocore`; this module turns them
into the predicate users pass (or get by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias

from sfn_workers._botocore import THROTTLING_CODES, TRANSIENT_CODES, classify_aws, retry_after
from sfn_workers.errors import ConfigurationError

__all__ = [
    "THROTTLING_CODES",
    "TRANSIENT_AWS",
    "TRANSIENT_CODES",
    "RetryOn",
    "TransientAwsErrors",
    "classify_aws",
    "predicate",
    "retry_after",
]

#: A predicate on an exception: True means "retry".
ExceptionPredicate: TypeAlias = Callable[[BaseException], bool]
#: What ``retry(on=...)`` accepts: an exception class, a predicate, or a list mixing both.
RetryOn: TypeAlias = type[BaseException] | ExceptionPredicate | Iterable[type[BaseException] | ExceptionPredicate]


class TransientAwsErrors:
    """The predicate of transient AWS failures: throttling, 5xx answers, connection errors, timeouts.

    ``TRANSIENT_AWS(exc)`` is True for them and False for everything else (validation, access,
    not found, your own exceptions). Use :meth:`reason` (or :func:`classify_aws`) to know which.
    Stateless and immutable: every instance is equal to :data:`TRANSIENT_AWS`.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __call__(self, exc: BaseException) -> bool:
        return classify_aws(exc) is not None

    def reason(self, exc: BaseException) -> str | None:
        """``"throttling"``, ``"server"``, ``"timeout"``, ``"connection"``, or None."""
        return classify_aws(exc)

    def __repr__(self) -> str:
        return "TRANSIENT_AWS"


#: The default of ``retry(on=...)``: a constant predicate object (see :class:`TransientAwsErrors`).
TRANSIENT_AWS = TransientAwsErrors()


def predicate(on: RetryOn) -> ExceptionPredicate:
    """``on`` as one predicate; :class:`ConfigurationError` for anything that is not a valid form."""
    if isinstance(on, type):
        if not issubclass(on, BaseException):
            raise ConfigurationError(f"on= takes exception classes or predicates, not the class {on.__name__}")
        cls = on
        return lambda exc: isinstance(exc, cls)
    if callable(on):
        return on
    if isinstance(on, Iterable) and not isinstance(on, str | bytes):
        items = list(on)
        parts = [predicate(item) for item in items]
        if all(isinstance(item, type) for item in items):
            classes = tuple(item for item in items if isinstance(item, type))
            return lambda exc: isinstance(exc, classes)
        return lambda exc: any(part(exc) for part in parts)
    raise ConfigurationError(f"on= takes exception classes or predicates, not {on!r}")
