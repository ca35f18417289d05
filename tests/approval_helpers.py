"""Bring a playbook to its approval step in the local account, as the approval tests need."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from playbooks import scenario
from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import WEB_FUNCTION, api_event
from playbooks.local.recorder import RECORDER
from playbooks.simulate import LINK, emails

DEADLINE_S = 30.0
# cost-spike's six actions on the everything world, in plan order
SIX = [
    "lower_memory_transform_handler",
    "switch_to_on_demand_etl_metadata",
    "enable_intelligent_tiering_raw_data_bucket",
    "enable_intelligent_tiering_processed_data_bucket",
    "set_log_retention_aws_lambda_ingest_handler",
    "set_log_retention_aws_lambda_transform_handler",
]


def throttled_world() -> dict[str, Any]:
    return dict(scenario.load("lambda-throttling", "throttled").data["world"])


def wait_for(condition: Any, what: str, deadline_s: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def start_until_approval(account: LocalAccount, config: dict[str, Any] | None = None, approvers: int = 1) -> tuple[str, list[str]]:
    """Start lambda-throttling on the throttled world; return (execution, the e-mailed ticket ids)."""
    scenario.build_world(account, throttled_world(), datetime.now(UTC))
    execution = account.start("lambda-throttling", {"functionName": "ingest-handler", "config": config or {"verifyWaitSeconds": 600}})
    topic = account.outputs["ApprovalTopicArn"]

    def tickets() -> list[str]:
        found = [t for e in emails(RECORDER.calls) if e.topic == topic for t in LINK.findall(e.body)]
        return found if len(found) >= approvers else []

    return execution, wait_for(tickets, "the approval e-mail")


def start_cost_spike_until_approval(account: LocalAccount) -> tuple[str, str]:
    """Start cost-spike on the everything world (a six-action plan); return (execution, the e-mailed ticket id)."""
    scenario.build_world(account, dict(scenario.load("cost-spike", "everything").data["world"]), datetime.now(UTC))
    execution = account.start("cost-spike", {"dryRun": False})
    topic = account.outputs["ApprovalTopicArn"]
    ticket = wait_for(
        lambda: next((t for e in emails(RECORDER.calls) if e.topic == topic for t in LINK.findall(e.body)), None), "the approval e-mail"
    )
    return execution, ticket


def page(account: LocalAccount, ticket: str) -> str:
    """The approval page as the ticket's link serves it."""
    return str(account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))["body"])


def approvals_table(account: LocalAccount) -> list[dict[str, Any]]:
    table = account.client("dynamodb")
    name = account.resources["ApprovalsTable"]
    return sorted(table.scan(TableName=name, ConsistentRead=True)["Items"], key=lambda item: item["id"]["S"])


def calls(api: str) -> int:
    return sum(1 for call in RECORDER.calls if call.api == api)
