"""The throttling plan says what the state machine will apply: the action the ASL's approval choice and change
state read, the number the approver is shown, and the rollback to the value before.

A plan whose action is renamed, or whose description names another number than its `after`, would pass a property
test that only looks at actions of the expected `api`; these tests pin the plan to what the ASL really does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from test_throttling_logic import CONFIG, findings

import lambda_throttling as lt
from playbooks import project

DEFINITION = project.playbook("lambda-throttling").definition
APPROVED = {
    choice["Variable"].removeprefix("$.approval.approved."): choice["Next"]
    for choice in DEFINITION["States"]["Which remediation was approved?"]["Choices"]
}


def applied_api(state_name: str) -> str:
    """The IAM-style api of the Task that applies an approved action, read from the ASL."""
    resource = DEFINITION["States"][state_name]["Resource"]
    service, action = resource.removeprefix("arn:aws:states:::aws-sdk:").split(":")
    return f"{service}:{action[0].upper()}{action[1:]}"


@given(
    reserved=st.one_of(st.none(), st.integers(1, 5000)),
    limit=st.integers(100, 20000),
    others=st.integers(0, 20000),
    cap=st.integers(1, 10000),
    factor=st.floats(1.1, 10),
    throttles=st.integers(1, 10_000),
)
def test_every_planned_action_is_one_the_state_machine_applies(
    reserved: int | None, limit: int, others: int, cap: int, factor: float, throttles: int
) -> None:
    unreserved = max(limit - others - (reserved or 0), 0)
    config = CONFIG | {"maxReservedConcurrency": cap, "concurrencyIncreaseFactor": factor}
    plan = lt.plan({"functionName": "f"}, findings(throttles, reserved, limit, unreserved), config)
    # A throttled function always gets exactly one action, and it is one the approval choice routes to a change state
    # calling the same API the action names.
    assert len(plan["actions"]) == 1
    action = plan["actions"][0]
    assert action["id"] in APPROVED
    assert applied_api(APPROVED[action["id"]]) == action["api"]
    assert (
        plan["case"]
        == {"lambda:PutFunctionConcurrency": "function-level", "servicequotas:RequestServiceQuotaIncrease": "account-level"}[action["api"]]
    )


@given(reserved=st.integers(1, 5000), cap=st.integers(1, 10000), factor=st.floats(1.1, 10))
def test_the_approver_reads_the_numbers_that_are_applied_and_rolled_back(reserved: int, cap: int, factor: float) -> None:
    config = CONFIG | {"maxReservedConcurrency": cap, "concurrencyIncreaseFactor": factor}
    plan = lt.plan({"functionName": "f"}, findings(5, reserved, limit=20_000, unreserved=15_000), config)
    action = plan["actions"][0]
    if action["api"] != "lambda:PutFunctionConcurrency":
        assert cap <= reserved  # only a cap at or below the reservation leaves nothing to raise
        return
    before, after = action["before"]["reservedConcurrentExecutions"], action["after"]["reservedConcurrentExecutions"]
    assert before == reserved
    assert re.search(rf"\bfrom {before} to {after}\.", action["description"])
    assert action["rollback"] == {
        "api": "lambda:PutFunctionConcurrency",
        "parameters": {"FunctionName": "f", "ReservedConcurrentExecutions": reserved},
    }


def test_the_change_state_applies_the_planned_target_and_value() -> None:
    parameters: dict[str, Any] = DEFINITION["States"][APPROVED["raise_reserved_concurrency"]]["Parameters"]
    assert parameters == {
        "FunctionName.$": "$.plan.actions[0].target",
        "ReservedConcurrentExecutions.$": "$.plan.actions[0].after.reservedConcurrentExecutions",
    }


@given(limit=st.integers(100, 100_000))
def test_the_quota_request_names_the_doubled_limit_it_asks_for(limit: int) -> None:
    plan = lt.plan({"functionName": "f"}, findings(5, None, limit=limit, unreserved=0), CONFIG)
    action = plan["actions"][0]
    assert action["api"] == "servicequotas:RequestServiceQuotaIncrease"
    assert action["after"] == {"concurrentExecutions": 2 * limit}
    assert f"from {limit} to {2 * limit}." in action["description"]
    assert action["rollback"] is None


PLAN_SCHEMA = Draft202012Validator(json.loads((project.SCHEMAS / "plan.json").read_text()))


@given(
    reserved=st.one_of(st.none(), st.integers(1, 5000)),
    limit=st.integers(100, 20000),
    unreserved=st.integers(0, 20000),
    throttles=st.integers(0, 10_000),
)
def test_every_plan_meets_the_plan_schema_the_approval_service_reads(
    reserved: int | None, limit: int, unreserved: int, throttles: int
) -> None:
    plan = lt.plan({"functionName": "f"}, findings(throttles, reserved, limit, unreserved), CONFIG)
    PLAN_SCHEMA.validate(plan)
    assert "f" in plan["summary"]
    # The runbook's short- and long-term fixes go into every report of a throttled function, never a quiet plan.
    assert plan["recommendations"] == (lt.RECOMMENDATIONS if throttles else [])


def test_the_raise_targets_the_throttled_function() -> None:
    action = lt.plan({"functionName": "ingest-handler"}, findings(5, 100), CONFIG)["actions"][0]
    assert (action["api"], action["target"]) == ("lambda:PutFunctionConcurrency", "ingest-handler")


def test_the_quota_request_records_the_limit_before() -> None:
    action = lt.plan({"functionName": "f"}, findings(5, None, limit=1000, unreserved=0), CONFIG)["actions"][0]
    assert action["target"] == f"lambda/{lt.LAMBDA_CONCURRENCY_QUOTA_CODE}"
    assert action["before"] == {"concurrentExecutions": 1000}


def test_the_evidence_shows_the_reservation_and_the_log_counts() -> None:
    measured = findings(5, None)
    measured["measured"]["metrics"]["insights"] = {
        "status": "Complete",
        "bins": [{"bin": "10:00", "count": 7}, {"bin": "10:05", "count": 9}],
    }
    evidence = lt.plan({"functionName": "f"}, measured, CONFIG)["evidence"]
    assert "Reserved concurrency: none (uses the unreserved pool)." in evidence
    assert "Log events per 5 minutes (Logs Insights): 10:00: 7, 10:05: 9." in evidence
    evidence = lt.plan({"functionName": "f"}, findings(5, 100), CONFIG)["evidence"]
    assert "Reserved concurrency: 100." in evidence
    assert "Logs Insights per-5-minute counts unavailable (Complete)." in evidence
