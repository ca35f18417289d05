"""One stack per pipeline: the template deploys twice into one account with other parameters, nothing collides, and
each stack's playbooks act only on their own pipeline while both run at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from approval_helpers import throttled_world, wait_for

from playbooks import scenario
from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import WEB_FUNCTION, api_event, read_nonce
from playbooks.local.recorder import RECORDER
from playbooks.simulate import LINK, emails

# Pipeline B: every parameter that names something of the pipeline or the account differs from the defaults (pipeline A).
PIPELINE_B = {
    "IngestFunctionName": "orders-ingest",
    "TransformFunctionName": "orders-transform",
    "EtlStateMachineName": "orders-workflow",
    "RawBucketName": "orders-raw",
    "ProcessedBucketName": "orders-processed",
    "MetadataTableName": "orders-metadata",
    "ThrottlingAlarmName": "orders-throttling",
    "ExecutionStuckAlarmName": "orders-execution-stuck",
    "AccessDeniedAlarmName": "orders-access-denied",
    "ExecutionRateAlarmName": "orders-execution-rate",
    "EtlEventRuleName": "orders-s3-events",
    "CostBudgetName": "orders-monthly",
    "PipelineRoleName": "orders-role",
    "PipelineKeyAlias": "orders",
}


@pytest.fixture
def account() -> Iterator[LocalAccount]:
    with LocalAccount(stack_name="pipeline-a") as local:
        local.deploy_stack("pipeline-b", PIPELINE_B)
        yield local


def both_worlds() -> dict[str, Any]:
    """Each pipeline's ingest function throttled at 100 (pipeline B's is the same world under B's names)."""
    world_a = throttled_world()
    world_b = json.loads(json.dumps(world_a).replace("ingest-handler", "orders-ingest").replace("transform-handler", "orders-transform"))
    return {key: world_a[key] + world_b[key] if isinstance(world_a[key], list) else world_a[key] for key in world_a}


def approve(account: LocalAccount, stack: str, ticket: str) -> dict[str, Any]:
    """The approver opens the link served by that stack's API and presses Approve on the served form."""
    page = account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"), stack=stack)
    form = urlencode({"decision": "approve", "nonce": read_nonce(page.get("body", ""))})
    return dict(account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", form), stack=stack))


def tickets(account: LocalAccount, stack: str) -> list[str]:
    topic = account.stacks[stack].outputs["ApprovalTopicArn"]
    return [ticket for email in emails(RECORDER.calls) if email.topic == topic for ticket in LINK.findall(email.body)]


def test_two_stacks_deploy_into_one_account_without_collisions(account: LocalAccount) -> None:
    a, b = account.stacks["pipeline-a"], account.stacks["pipeline-b"]
    # every physical resource (functions, tables, topics, alarms, log groups, rules, roles ...) is the stack's own
    assert set(a.resources) == set(b.resources)
    assert set(a.resources.values()) & set(b.resources.values()) - {""} == set()  # "": a type moto does not create
    assert set(a.outputs.values()) & set(b.outputs.values()) == set()
    # and both stacks' alarms exist side by side
    names = {alarm["AlarmName"] for alarm in account.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert {"LambdaThrottlingAlarm", "orders-throttling", "AccessDeniedAlarm", "orders-access-denied"} <= names
    # each alarm watches its own pipeline's metric: one pipeline's access-denied lines never start the other's playbook
    watched = [
        (alarm["Namespace"], alarm["MetricName"], json.dumps(alarm.get("Dimensions"), sort_keys=True))
        for alarm in account.client("cloudwatch").describe_alarms()["MetricAlarms"]
    ]
    assert len(watched) == len(set(watched))


def test_each_stacks_playbook_changes_only_its_own_pipeline_while_both_run(account: LocalAccount) -> None:
    # GIVEN both pipelines' ingest functions throttled
    scenario.build_world(account, both_worlds(), datetime.now(UTC))
    config = {"verifyWaitSeconds": 60}
    # WHEN both stacks' playbooks run at once, and pipeline B's is also asked about pipeline A's function
    run_a = account.start("lambda-throttling", {"functionName": "ingest-handler", "config": config}, stack="pipeline-a")
    run_b = account.start("lambda-throttling", {"functionName": "orders-ingest", "config": config}, stack="pipeline-b")
    foreign = account.start("lambda-throttling", {"functionName": "ingest-handler", "config": config}, stack="pipeline-b")
    (ticket_a,) = wait_for(lambda: tickets(account, "pipeline-a"), "pipeline A's approval e-mail")
    (ticket_b,) = wait_for(lambda: tickets(account, "pipeline-b"), "pipeline B's approval e-mail")
    # THEN a link is good only at its own stack's approval page
    assert account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket_a}"), stack="pipeline-b")["statusCode"] == 404
    assert approve(account, "pipeline-a", ticket_a)["statusCode"] == 200
    assert approve(account, "pipeline-b", ticket_b)["statusCode"] == 200
    finished = wait_for(
        lambda: all(account.describe(r)["status"] != "RUNNING" for r in (run_a, run_b, foreign)) and (run_a, run_b, foreign),
        "all three runs to finish",
    )
    assert [account.describe(r)["status"] for r in finished] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert account.describe(foreign)["error"] == "InvalidInput"
    # AND each stack's state machine changed its own pipeline's function, and nothing else
    changes = [
        (call.principal, call.params["FunctionName"])
        for call in RECORDER.calls
        if call.api == "lambda:PutFunctionConcurrency" and call.error is None and call.principal != "world"
    ]
    assert sorted(changes) == [
        ("LambdaThrottlingStateMachine", "ingest-handler"),
        ("pipeline-b/LambdaThrottlingStateMachine", "orders-ingest"),
    ]
    lam = account.client("lambda")
    assert [lam.get_function_concurrency(FunctionName=f)["ReservedConcurrentExecutions"] for f in ("ingest-handler", "orders-ingest")] == [
        200,
        200,
    ]
