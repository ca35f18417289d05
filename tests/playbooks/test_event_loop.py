"""The event-loop playbook, end to end in the local account (real ASL, real handlers, thousands of executions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playbooks import scenario, simulate
from playbooks.local.account import LocalAccount

PLAYBOOK = "event-loop"
WORKFLOW = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow"
FIXED_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["raw-data-bucket"]}, "object": {"key": [{"prefix": "incoming/"}]}},
}


class World:
    """What the pipeline looks like once the playbook has finished (read before the account closes)."""

    running: int
    rule: dict[str, Any]
    alarms: list[str]
    stop_causes: set[str]

    def __call__(self, account: LocalAccount, result: simulate.Result | None = None) -> None:
        sfn = account.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=WORKFLOW, PaginationConfig={"PageSize": 1000})
        executions = [e for page in pages for e in page["executions"]]
        self.running = sum(1 for e in executions if e["status"] == "RUNNING")
        self.rule = account.client("events").describe_rule(Name="etl-s3-events")
        self.alarms = [a["AlarmName"] for a in account.client("cloudwatch").describe_alarms()["MetricAlarms"]]
        aborted = [e for e in executions if e["status"] == "ABORTED"][:20]
        self.stop_causes = {sfn.describe_execution(executionArn=e["executionArn"]).get("cause", "") for e in aborted}


def run(name: str, **kwargs: Any) -> tuple[simulate.Result, World]:
    world = World()
    return simulate.run(scenario.load(PLAYBOOK, name), inspect=world, **kwargs), world


def stops(result: simulate.Result) -> list[str]:
    return [m for m in result.mutations if m.startswith("sfn:StopExecution ")]


def test_processed_bucket_loop_is_contained_fixed_and_verified() -> None:
    # GIVEN 2,000 RUNNING executions and a rule that admits the processed bucket; WHEN both approvals are given
    result, world = run("processed-bucket-loop")
    # THEN the scenario's expectations hold, nothing of the workflow is left RUNNING, every execution was stopped once
    assert result.passed, result.expect_failures
    assert world.running == 0
    assert len(stops(result)) == len(set(stops(result))) == 2000
    assert world.stop_causes == {"Event loop mitigation"}
    # AND the rule has exactly the runbook's fixed pattern, is enabled again, and the alarm exists
    assert json.loads(world.rule["EventPattern"]) == FIXED_PATTERN
    assert world.rule["State"] == "ENABLED"
    assert "etl-execution-rate-spike" in world.alarms
    report = next(e for e in result.emails if e["subject"].startswith("[remediated]"))
    assert '"stopped": 2000' in report["body"]  # the bulk stop's own count reaches the report
    changes = [m for m in result.mutations if not m.startswith("sfn:StopExecution")]
    assert changes == ["eventbridge:DisableRule etl-s3-events", "eventbridge:PutRule etl-s3-events", "eventbridge:EnableRule etl-s3-events"]


def test_rule_is_reenabled_only_after_the_second_approval() -> None:
    # WHEN the containment is approved and the fix rejected
    result, world = run("reject-containment", decision="approve,reject")
    # THEN the loop is contained, the rule stays disabled with its old pattern, and the report says so
    assert (result.status, result.outcome) == ("SUCCEEDED", "escalated")
    assert world.running == 0 and world.rule["State"] == "DISABLED"
    assert json.loads(world.rule["EventPattern"]) != FIXED_PATTERN
    assert [m for m in result.mutations if not m.startswith("sfn:StopExecution")] == ["eventbridge:DisableRule etl-s3-events"]
    assert len(stops(result)) == 120
    report = next(e for e in result.emails if e["subject"].startswith("[escalated]"))
    assert "the rule is left disabled" in report["body"]


@pytest.mark.parametrize("name", ["traffic-spike", "reject-containment", "throttled-stop"])
def test_scenario_meets_its_expectations(name: str) -> None:
    result, world = run(name)
    assert result.passed, result.expect_failures
    if name == "throttled-stop":
        # every execution stopped despite 300 throttled calls, and the deleted alarm is back
        assert world.running == 0 and "etl-execution-rate-spike" in world.alarms
        assert world.rule["State"] == "ENABLED"
    else:
        # nothing stopped, nothing changed
        assert world.running > 0 and world.rule["State"] == "ENABLED"


def test_dry_run_reports_both_steps_and_changes_nothing() -> None:
    result, world = run("reject-containment", dry_run=True)
    assert (result.outcome, result.mutations) == ("dry-run", [])
    assert world.running == 120
    assert any("Disable the EventBridge rule etl-s3-events" in e["body"] for e in result.emails)


def test_alarm_sample_reaches_the_playbook_through_the_templates_rule() -> None:
    from playbooks.project import ROOT

    event = json.loads((ROOT / "events" / "event-loop-alarm.json").read_text())
    with LocalAccount() as account:
        ours = account.state_machine_arn(PLAYBOOK).split(":")[-1]
        assert [arn.split(":")[6] for arn in account.put_event(event)] == [ours]
        # the throttling alarm's event does not start this playbook
        other = json.loads((ROOT / "events" / "lambda-throttling-alarm.json").read_text())
        assert ours not in [arn.split(":")[6] for arn in account.put_event(other)]


def test_an_expired_fix_approval_leaves_the_loop_contained_and_the_rule_disabled() -> None:
    result, world = run("reject-containment", decision="approve,expire")
    assert (result.outcome, world.rule["State"], world.running) == ("escalated", "DISABLED", 0)
    assert "The fix approval expired" in result.states


def test_the_rule_is_disabled_again_when_the_loop_persists_after_the_fix() -> None:
    # GIVEN executions keep starting above the threshold once the rule is re-enabled
    loop = scenario.load(PLAYBOOK, "reject-containment")
    loop.data["reactions"] = [
        {
            "after": "events:EnableRule",
            "metrics": [
                {
                    "namespace": "AWS/States",
                    "metric": "ExecutionsStarted",
                    "dimensions": {"StateMachineArn": WORKFLOW},
                    "values": {"0": 950},
                }
            ],
        }
    ]
    loop.data["expect"] = {}
    world = World()
    result = simulate.run(loop, decision="approve", inspect=world)
    # THEN the playbook escalates and leaves the rule disabled (with the fixed pattern)
    assert result.outcome == "escalated"
    assert result.mutations[-1] == "eventbridge:DisableRule etl-s3-events"
    assert world.rule["State"] == "DISABLED" and json.loads(world.rule["EventPattern"]) == FIXED_PATTERN


# PutRule replaces every field it is given: "Read the rule" did not select the description, so the fix blanked it.
def test_the_pattern_fix_keeps_the_rules_description() -> None:
    data = scenario.load(PLAYBOOK, "processed-bucket-loop")
    described: dict[str, str] = {}

    def inspect(account: LocalAccount, result: simulate.Result) -> None:
        rule = data.data["world"]["rules"][0]["name"]
        described["after"] = account.client("events").describe_rule(Name=rule).get("Description", "")

    result = simulate.run(data, inspect=inspect)
    assert result.outcome == "remediated"
    assert described["after"] == data.data["world"]["rules"][0]["description"] == "New objects start the ETL workflow."
