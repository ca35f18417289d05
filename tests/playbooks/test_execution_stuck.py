"""The execution-stuck playbook, end to end in the local account (real ASL, real handlers, the pipeline's workflow)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from approval_helpers import wait_for

from playbooks import scenario, simulate
from playbooks.local.account import TERMINAL, LocalAccount
from playbooks.local.approval_web import click
from playbooks.local.recorder import RECORDER

PLAYBOOK = "execution-stuck"
WORKFLOW = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow"
STUCK = "arn:aws:states:us-east-1:123456789012:execution:etl-workflow:0f6c4e52-7d8a-4a43-9f0e-3b1a2c5d6e7f"
_runs: dict[tuple[str, str | None, bool], tuple[simulate.Result, list[dict[str, Any]]]] = {}


def run(name: str, decision: str | None = None, dry_run: bool = False) -> simulate.Result:
    return run_with_calls(name, decision, dry_run)[0]


def run_with_calls(name: str, decision: str | None = None, dry_run: bool = False) -> tuple[simulate.Result, list[dict[str, Any]]]:
    """Each simulation once per module (they cost seconds); the calls the playbook's role made are kept with it."""
    key = (name, decision, dry_run)
    if key not in _runs:
        result = simulate.run(scenario.load(PLAYBOOK, name), decision=decision, dry_run=dry_run)
        calls = [
            {"api": c.api, "params": c.params}
            for c in RECORDER.calls
            if c.principal in ("ExecutionStuckStateMachine", "StuckExecutionReprocessFunction") and c.error is None
        ]
        _runs[key] = (result, calls)
    return _runs[key]


@pytest.mark.parametrize(
    "name",
    [
        "lambda-timeout",
        "oom-killed",
        "already-finished",
        "unknown-execution",
        "watchdog-alarm",
        "retry-writes-nothing",
        "processed-object-unreadable",
        "large-input",
        "watchdog-large-input",
    ],
)
def test_scenario_meets_its_expectations(name: str) -> None:
    # WHEN the scenario runs with its own decision
    result = run(name)
    # THEN everything its `expect` block says holds
    assert result.passed, result.expect_failures


def test_approval_stops_then_reprocesses_with_the_same_input() -> None:
    # GIVEN the stuck execution's input as the world started it
    world_input = scenario.load(PLAYBOOK, "lambda-timeout").data["world"]["executions"][0]["input"]
    # WHEN the plan is approved
    result, calls = run_with_calls("lambda-timeout")
    # THEN exactly two changes, in order: stop the stuck execution, start the retry
    assert result.mutations == [f"sfn:StopExecution {STUCK}", f"sfn:StartExecution {WORKFLOW}"]
    stop = next(c["params"] for c in calls if c["api"] == "states:StopExecution")
    start = next(c["params"] for c in calls if c["api"] == "states:StartExecution")
    assert "execution-stuck playbook, incident" in str(stop["cause"])
    assert start["input"] == json.dumps(world_input)  # byte for byte what the stuck execution was given
    assert re.fullmatch(r"retry-\d{10}-[0-9a-f]{8}", str(start["name"]))
    # AND the retry is verified: it succeeded, wrote the processed object and updated etl-metadata
    report = result.report or {}
    assert report["verification"] | {"attempt": 0} == {
        "attempt": 0,
        "done": True,
        "execution": start["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{start['name']}",
        "metadataUpdated": True,
        "processedObject": True,
        "problems": [],
        "status": "SUCCEEDED",
        "verified": True,
    }


@pytest.mark.parametrize(("decision", "outcome"), [("reject", "rejected"), ("expire", "expired")])
def test_no_change_without_approval(decision: str, outcome: str) -> None:
    result = run("lambda-timeout", decision=decision)
    assert (result.status, result.outcome, result.mutations) == ("SUCCEEDED", outcome, [])
    assert "Stop the stuck execution" not in result.states


def test_dry_run_reports_the_plan_and_changes_nothing() -> None:
    result = run("lambda-timeout", dry_run=True)
    assert (result.outcome, result.mutations) == ("dry-run", [])
    assert "Ask an approver" not in result.states
    assert any("Stop execution 0f6c4e52" in e["body"] for e in result.emails if e["subject"].startswith("[dry-run]"))


def test_unknown_execution_fails_with_a_clear_error() -> None:
    result = run("unknown-execution")
    assert (result.status, result.error, result.mutations) == ("FAILED", "ExecutionNotFound", [])
    assert "etl-workflow:0f6c4e52-0000-0000-0000-000000000000 exists; nothing was changed" in str(result.cause)


def test_watchdog_runs_once_per_long_running_execution() -> None:
    result = run("watchdog-alarm")
    stopped = sorted(m.rsplit(":", 1)[-1] for m in result.mutations if m.startswith("sfn:StopExecution"))
    assert stopped == ["stuck-25m", "stuck-50m"]  # not the 5-minute one, not the finished one, none twice
    assert [m for m in result.mutations if m.startswith("sfn:StartExecution")] == [f"sfn:StartExecution {WORKFLOW}"] * 2
    assert len(result.executions) == 2


def test_escalates_when_the_retry_hangs_too() -> None:
    # GIVEN a transform that is killed for every execution, the retry included, and a short verification deadline
    data = scenario.load(PLAYBOOK, "lambda-timeout")
    data.data["world"]["behaviours"][0]["hangs"] = ["*"]
    data.data["trigger"]["input"]["config"] = {"reprocessPollSeconds": 30, "reprocessDeadlineSeconds": 120}
    data.data["expect"] = {}
    # WHEN approved
    result = simulate.run(data)
    # THEN it stopped and reprocessed, checked the retry four times, and escalated with the retry's rollback
    assert result.outcome == "escalated"
    assert [m.split(" ")[0] for m in result.mutations] == ["sfn:StopExecution", "sfn:StartExecution"]
    assert result.states.count("Check the retry") == 4
    report = next(e for e in result.emails if e["subject"].startswith("[escalated]"))
    assert '"api": "states:StopExecution"' in report["body"]


def test_alarm_delivered_twice_starts_no_duplicate_and_the_lock_stops_a_second_run() -> None:
    data = scenario.load(PLAYBOOK, "watchdog-alarm")
    with LocalAccount() as account:
        scenario.build_world(account, data.data["world"], datetime.now(UTC))
        event = account.alarm_event("EtlExecutionStuckAlarm")
        # WHEN the alarm's event arrives twice (EventBridge delivers at least once)
        first = account.put_event(event)
        second = account.put_event(event)
        # THEN the first delivery started one run per long-running execution, named after it; the second none
        assert sorted(arn.rsplit(":", 1)[-1].rsplit("-", 2)[0] for arn in first) == ["stuck-stuck-25m", "stuck-stuck-50m"]
        assert second == []
        inputs = [json.loads(account.describe(arn)["input"]) for arn in first]
        assert {i["startedBy"]["kind"] for i in inputs} == {"watchdog"}
        # AND once both runs hold their locks (they wait for approval), a run started by hand for one of the same
        # executions ends "already-running", changing nothing
        entered = lambda arn: [e["stateEnteredEventDetails"]["name"] for e in account.history(arn) if "stateEnteredEventDetails" in e]  # noqa: E731
        wait_for(lambda: all("Ask an approver" in entered(arn) for arn in first), "both runs to ask an approver")
        manual = account.start(PLAYBOOK, {"executionArn": inputs[0]["executionArn"]})
        wait_for(lambda: account.describe(manual)["status"] in TERMINAL, "the console run to end")
        assert json.loads(account.describe(manual)["output"])["outcome"] == "already-running"


def test_a_later_alarm_starts_a_fresh_run_once_the_earlier_one_ended() -> None:
    data = scenario.load(PLAYBOOK, "lambda-timeout")
    with LocalAccount() as account:
        scenario.build_world(account, data.data["world"], datetime.now(UTC))
        # GIVEN the watchdog's run for the stuck execution ended without a change (its plan was rejected)
        first = account.put_event(account.alarm_event("EtlExecutionStuckAlarm"))
        assert len(first) == 1
        tickets = wait_for(
            lambda: [t for e in simulate.emails(RECORDER.calls) for t in simulate.LINK.findall(e.body)], "the approval e-mail"
        )
        click(account, tickets[0], "reject")
        wait_for(lambda: account.describe(first[0])["status"] in TERMINAL, "the first run to end")
        assert json.loads(account.describe(first[0])["output"])["outcome"] == "rejected"
        # WHEN the alarm fires again later (a new state-change event) for the execution, still stuck
        later = account.put_event(account.alarm_event("EtlExecutionStuckAlarm"))
        # THEN a fresh run starts for it, instead of ExecutionAlreadyExists for 90 days
        assert len(later) == 1 and later != first
        assert json.loads(account.describe(later[0])["input"])["executionArn"] == STUCK


def test_the_playbook_carries_none_of_the_pipelines_data() -> None:
    # GIVEN a stuck execution whose input is about 200 KB (the workflow passes its data between states)
    seen: dict[str, Any] = {}

    def inspect(account: Any, result: simulate.Result) -> None:
        history = account.client("stepfunctions").get_execution_history(executionArn=result.executions[0], maxResults=1000)["events"]
        details = [v for e in history for k, v in e.items() if k.endswith("EventDetails") and isinstance(v, dict)]
        seen["largest"] = max(len(str(d.get(field, ""))) for d in details for field in ("input", "output", "parameters"))

    # WHEN the playbook handles it
    result = simulate.run(scenario.load(PLAYBOOK, "large-input"), inspect=inspect)
    # THEN it is reprocessed, and no state of the playbook, no task's parameters and no result held the input
    assert (result.status, result.outcome) == ("SUCCEEDED", "remediated")
    assert seen["largest"] < 32 * 1024
