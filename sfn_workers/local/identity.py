"""The one fake identity of the local runner: every local ARN names this account and region.

AWS would put the caller's account and region in an ARN; locally there is neither, so every
module that builds an ARN (state machines, executions, functions, activities, the execution's
role) takes them from here, and one execution never shows two accounts.
"""

from __future__ import annotations

__all__ = ["ACCOUNT_ID", "REGION", "arn"]

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def arn(service: str, resource: str, *, region: str = REGION) -> str:
    """``arn:aws:<service>:<region>:<account>:<resource>`` with the local account."""
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"
