"""The runtime's public names say what they are, and the paths the docs write work.

``sfn_workers.retry`` is the decorator; the module is ``sfn_workers.retries``; ``TRANSIENT_AWS`` is
a constant object; no public signature of the retry API names a private type.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import warnings

import pytest

import sfn_workers
import sfn_workers.retries
from sfn_workers.retries import DEFAULT_BUDGET, TRANSIENT_AWS, RetryBudget, TransientAwsErrors


def test_the_documented_module_paths_work_after_import_sfn_workers() -> None:
    # docs/api.md and docs/retries.md write these paths
    assert isinstance(sfn_workers.retries.DEFAULT_BUDGET, RetryBudget)
    assert sfn_workers.retries.TRANSIENT_AWS is TRANSIENT_AWS
    assert sfn_workers.retries.retry is sfn_workers.retry
    assert inspect.isfunction(sfn_workers.retry)


def test_the_old_module_path_still_imports_with_a_deprecation_warning_and_keeps_retry_a_function() -> None:
    # GIVEN a fresh interpreter where user code imports the old path first, then the package
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    from sfn_workers.retry import DEFAULT_BUDGET\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "import inspect, sfn_workers\n"
        "print('function:', inspect.isfunction(sfn_workers.retry))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # THEN it warns, naming the new path, and sfn_workers.retry is still the decorator
    assert "warned: sfn_workers.retry.DEFAULT_BUDGET is deprecated: import it from sfn_workers.retries" in out
    assert "function: True" in out


def test_the_old_module_path_gives_the_same_objects() -> None:
    old = importlib.import_module("sfn_workers.retry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert old.DEFAULT_BUDGET is DEFAULT_BUDGET
        assert old.TRANSIENT_AWS is TRANSIENT_AWS
    with pytest.raises(AttributeError):
        _ = old.NO_SUCH_NAME
    assert inspect.isfunction(sfn_workers.retry)


def test_transient_aws_is_a_constant_object() -> None:
    assert isinstance(TRANSIENT_AWS, TransientAwsErrors)
    assert repr(TRANSIENT_AWS) == "TRANSIENT_AWS"
    assert TransientAwsErrors() == TRANSIENT_AWS
    with pytest.raises(AttributeError):
        TRANSIENT_AWS.x = 1  # type: ignore[attr-defined]
    assert TRANSIENT_AWS(ValueError("mine")) is False


PUBLIC_RETRY_API = [
    sfn_workers.retry,
    sfn_workers.RetryPolicy.__init__,
    sfn_workers.RetryPolicy.call,
    sfn_workers.RetryPolicy.acall,
    sfn_workers.RetryBudget.__init__,
    sfn_workers.retries.classify_aws,
    sfn_workers.retries.retry_after,
    sfn_workers.retries.log_retry,
]


@pytest.mark.parametrize("member", PUBLIC_RETRY_API, ids=lambda m: m.__qualname__)
def test_no_public_retry_signature_names_a_private_type_or_any(member: object) -> None:
    signature = inspect.signature(member)  # type: ignore[arg-type]
    empty = inspect.Parameter.empty
    hints = [p.annotation for p in signature.parameters.values()] + [signature.return_annotation]
    annotations = [str(hint) for hint in hints if hint is not empty]
    for text in annotations:
        assert not re.search(r"(?<![A-Za-z0-9])_[A-Za-z]", text), text
        assert not re.search(r"\bAny\b", text), text
    defaults = [p.default for p in signature.parameters.values() if p.default is not inspect.Parameter.empty]
    assert all(not type(d).__name__.startswith("_") for d in defaults), defaults
