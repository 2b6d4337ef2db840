""":class:`LocalStepFunctions`: the backend with every action the local API serves.

To serve another action, write its function ``action(backend, request) -> response`` in a module of
its own with an ``ACTIONS`` table, and add the table to :data:`ACTION_TABLES` (see
docs/architecture.md, "Local API server").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sfn_workers.local.api import activities, definition_check, executions, machines, tags, test_state, versions
from sfn_workers.local.api.backend import Action, Backend, IntegrationsFactory
from sfn_workers.local.api.retention import DEFAULT_HISTORY_BUDGET_BYTES, DEFAULT_KEEP_HISTORIES
from sfn_workers.local.api.task_tokens import task_token_actions
from sfn_workers.local.identity import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from sfn_workers.local.asl import Clock, TokenBroker

__all__ = ["ACTION_TABLES", "LocalStepFunctions"]

#: The action tables every LocalStepFunctions serves, in order (a later table replaces an action).
ACTION_TABLES: tuple[Mapping[str, Action], ...] = (
    machines.ACTIONS,
    executions.ACTIONS,
    definition_check.ACTIONS,
    tags.ACTIONS,
    test_state.ACTIONS,
    versions.ACTIONS,
    activities.ACTIONS,
)


class LocalStepFunctions(Backend):
    """State machines and executions behind the local Step Functions API, with all its actions.

    Arguments as :class:`~sfn_workers.local.api.backend.Backend`. ``service.call("DescribeExecution",
    {...})`` answers any action without HTTP; the methods below are the common ones by name.
    """

    def __init__(
        self,
        integrations: IntegrationsFactory,
        tokens: TokenBroker,
        *,
        clock: Callable[[], Clock] | None = None,
        max_executions: int = 64,
        max_queued: int = 1000,
        keep_executions: int = DEFAULT_KEEP_HISTORIES,
        history_budget_bytes: int = DEFAULT_HISTORY_BUDGET_BYTES,
        region: str = REGION,
        account: str = ACCOUNT_ID,
    ) -> None:
        super().__init__(
            integrations,
            tokens,
            clock=clock,
            max_executions=max_executions,
            max_queued=max_queued,
            keep_executions=keep_executions,
            history_budget_bytes=history_budget_bytes,
            region=region,
            account=account,
        )
        for table in ACTION_TABLES:
            self.add_actions(table)
        self.add_actions({name: _unbound(handler) for name, handler in task_token_actions(tokens).items()})

    def add_state_machine(
        self, name: str, definition: str | Mapping[str, Any], *, type: str = "STANDARD", role_arn: str | None = None
    ) -> str:
        """Create (or replace) a state machine directly, e.g. one of the template's; returns its ARN."""
        return machines.add_state_machine(self, name, definition, type=type, role_arn=role_arn)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The events of an execution so far (timestamps as epoch seconds)."""
        return executions.history(self, execution_arn)

    # The actions by method name (kept from the service's first version; ``call`` serves any action).

    def create_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("CreateStateMachine", request)

    def describe_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("DescribeStateMachine", request)

    def list_state_machines(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("ListStateMachines", request)

    def delete_state_machine(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("DeleteStateMachine", request)

    def start_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("StartExecution", request)

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("StartSyncExecution", request)

    def describe_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("DescribeExecution", request)

    def describe_state_machine_for_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("DescribeStateMachineForExecution", request)

    def stop_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("StopExecution", request)

    def list_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("ListExecutions", request)

    def get_execution_history(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("GetExecutionHistory", request)


def _unbound(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Action:
    def action(backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
        return handler(request)

    return action
