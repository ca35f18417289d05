"""Classification and plan of the throttling playbook (plain functions, no AWS)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import lambda_throttling as lt
from playbooks import project

PLAN_SCHEMA = Draft202012Validator(json.loads((project.SCHEMAS / "plan.json").read_text()))
CONFIG = {"lookbackMinutes": 60, "maxReservedConcurrency": 1000, "concurrencyIncreaseFactor": 2}


def findings(throttles: int, reserved: int | None, limit: int = 1000, unreserved: int = 900) -> dict[str, Any]:
    return {
        "function": {"reserved": {} if reserved is None else {"ReservedConcurrentExecutions": reserved}},
        "account": {"concurrentExecutions": limit, "unreservedConcurrentExecutions": unreserved},
        "measured": {
            "metrics": {
                "throttles": throttles,
                "peakConcurrency": reserved or 0,
                "bins": [],
                "insights": {"status": "Complete", "bins": []},
            }
        },
    }


def test_no_throttles_is_no_action() -> None:
    plan = lt.plan({"functionName": "ingest-handler"}, findings(0, 100), CONFIG)
    assert (plan["case"], plan["actions"]) == ("no-throttling", [])


def test_function_level_doubles_the_reservation_with_a_rollback() -> None:
    plan = lt.plan({"functionName": "ingest-handler"}, findings(40, 100), CONFIG)
    assert plan["case"] == "function-level"
    (action,) = plan["actions"]
    assert action["after"] == {"reservedConcurrentExecutions": 200}
    assert action["rollback"]["parameters"] == {"FunctionName": "ingest-handler", "ReservedConcurrentExecutions": 100}
    assert len(plan["recommendations"]) == 6


def test_raise_keeps_the_unreserved_minimum() -> None:
    # only 150 unreserved: at most 50 more may be reserved
    plan = lt.plan({"functionName": "ingest-handler"}, findings(40, 100, unreserved=150), CONFIG)
    assert plan["actions"][0]["after"] == {"reservedConcurrentExecutions": 150}


def test_no_headroom_becomes_account_level() -> None:
    plan = lt.plan({"functionName": "ingest-handler"}, findings(40, 100, unreserved=100), CONFIG)
    assert plan["case"] == "account-level"
    assert plan["actions"][0]["after"] == {"concurrentExecutions": 2000}


@given(
    reserved=st.integers(1, 5000),
    limit=st.integers(100, 20000),
    others=st.integers(0, 20000),
    cap=st.integers(1, 10000),
    factor=st.floats(1.1, 10),
)
def test_proposed_reservation_is_always_safe(reserved: int, limit: int, others: int, cap: int, factor: float) -> None:
    unreserved = limit - others - reserved
    config = CONFIG | {"maxReservedConcurrency": cap, "concurrencyIncreaseFactor": factor}
    plan = lt.plan({"functionName": "f"}, findings(5, reserved, limit, unreserved), config)
    for action in plan["actions"]:
        if action["api"] == "lambda:PutFunctionConcurrency":
            proposed = action["after"]["reservedConcurrentExecutions"]
            assert reserved < proposed <= cap
            assert unreserved - (proposed - reserved) >= lt.MIN_UNRESERVED_CONCURRENCY


def test_a_reservation_of_zero_is_restored_from_the_throttled_calls() -> None:
    # GIVEN every call throttled by a reservation of 0: the busiest 5 minutes had 300 attempts, the timeout is 60 s
    data = findings(600, 0)
    data["measured"]["metrics"] |= {"peakThrottlesPer5Minutes": 300, "timeoutSeconds": 60}
    # WHEN the plan is made
    plan = lt.plan({"functionName": "ingest-handler"}, data, CONFIG)
    # THEN it restores a reservation (1 attempt/s x 60 s), not an account quota request, with 0 as the rollback
    [action] = plan["actions"]
    assert (plan["case"], action["api"], action["after"]) == (
        "function-level",
        "lambda:PutFunctionConcurrency",
        {"reservedConcurrentExecutions": 60},
    )
    assert action["rollback"]["parameters"]["ReservedConcurrentExecutions"] == 0
    # AND the change and its rollback name the throttled function, and the approver reads why 0 was the problem
    assert (action["target"], action["rollback"]["parameters"]["FunctionName"]) == ("ingest-handler", "ingest-handler")
    assert action["description"].startswith("Raise reserved concurrency of ingest-handler from 0 (every call throttled) to 60")
    assert "A reservation of 0 throttles every call: someone throttled the function on purpose, or by mistake." in plan["evidence"]
    PLAN_SCHEMA.validate(plan)


def test_an_open_quota_request_is_followed_not_repeated() -> None:
    # GIVEN the account is exhausted and an increase is already requested (AWS allows one open request per quota)
    data = findings(120, None, unreserved=100)
    data["measured"]["metrics"]["openQuotaRequest"] = {"id": "r-1", "status": "CASE_OPENED", "caseId": "170", "desiredValue": 2000}
    plan = lt.plan({"functionName": "ingest-handler"}, data, CONFIG)
    # THEN nothing new is proposed and the summary names the request and its case
    assert (plan["case"], plan["actions"]) == ("quota-request-open", [])
    assert "request r-1, CASE_OPENED, support case 170" in plan["summary"]
    assert plan["summary"].endswith(
        "already requested (request r-1, CASE_OPENED, support case 170): follow that request in the Service Quotas "
        "console; nothing new is requested."
    )
    PLAN_SCHEMA.validate(plan)


def test_an_open_quota_request_without_a_case_names_none() -> None:
    # GIVEN an increase requested and still PENDING: AWS has opened no support case yet
    data = findings(120, None, unreserved=100)
    data["measured"]["metrics"]["openQuotaRequest"] = {"id": "r-2", "status": "PENDING", "desiredValue": 2000}
    plan = lt.plan({"functionName": "ingest-handler"}, data, CONFIG)
    # THEN the summary names the request and no case
    assert plan["summary"].endswith(
        "already requested (request r-2, PENDING): follow that request in the Service Quotas console; nothing new is requested."
    )
    PLAN_SCHEMA.validate(plan)


def test_a_quota_request_says_the_run_ends_escalated_until_aws_grants_it() -> None:
    # GIVEN the account's concurrency is exhausted and no request is open
    plan = lt.plan({"functionName": "ingest-handler"}, findings(120, None, unreserved=100), CONFIG)
    # THEN the approver reads that AWS reviews the request and the run will not claim it remediated
    assert plan["case"] == "account-level"
    assert plan["summary"].endswith(
        "(limit 1000, unreserved 100). AWS reviews a quota increase, often through a support case: the run ends escalated "
        "with the request to follow unless AWS grants it at once."
    )
    PLAN_SCHEMA.validate(plan)
