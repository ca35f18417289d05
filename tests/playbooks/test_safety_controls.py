"""The brake and the circuit breaker, in every playbook (real ASL, real handlers, the local account)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playbooks import project, scenario, simulate
from playbooks.local.account import LocalAccount

PLAYBOOKS = sorted(project.playbooks())


def approval_emails(result: simulate.Result) -> list[dict[str, Any]]:
    return [e for e in result.emails if e["subject"].startswith("[approval needed]")]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_engaged_brake_pauses_the_playbook_asking_and_changing_nothing(playbook: str) -> None:
    # GIVEN the brake is engaged before the trigger
    result = simulate.run(scenario.load(playbook, "brake-engaged"))
    # THEN the plan is reported, outcome paused, no approval e-mail, no change
    assert result.passed, result.expect_failures
    assert (result.outcome, result.mutations, approval_emails(result)) == ("paused", [], [])
    assert result.report is not None and result.report["proposed"], "the paused report carries the plan"


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_open_circuit_escalates_with_the_earlier_runs_and_asks_nothing(playbook: str) -> None:
    result = simulate.run(scenario.load(playbook, "circuit-open"))
    assert result.passed, result.expect_failures
    assert (result.outcome, result.mutations, approval_emails(result)) == ("escalated", [], [])
    assert result.report is not None
    links = [run["link"] for run in result.report["earlierRuns"]]
    assert len(links) == 2 and all(link.startswith("https://us-east-1.console.aws.amazon.com/states/") for link in links)


def test_an_approval_pending_when_the_brake_is_engaged_cannot_apply() -> None:
    # GIVEN the brake is engaged after the approval e-mail went out, and the approver approves
    result = simulate.run(scenario.load("lambda-throttling", "brake-while-pending"))
    # THEN the approval was asked for and given, but nothing changed
    assert result.passed, result.expect_failures
    assert len(approval_emails(result)) == 1
    assert (result.outcome, result.mutations) == ("paused", [])


def test_an_earlier_remediation_outside_the_window_or_of_another_resource_does_not_count() -> None:
    # GIVEN the throttled incident with one earlier change in the window, one too old and one of another function
    base = scenario.load("lambda-throttling", "throttled")
    data = json.loads(json.dumps(base.data))
    data["world"]["earlierChanges"] = [
        {"key": "lambda-throttling#ingest-handler", "minutesAgo": 61},
        {"key": "lambda-throttling#ingest-handler", "minutesAgo": 30},
        {"key": "lambda-throttling#transform-handler", "minutesAgo": 5},
        {"key": "cost-spike#ingest-handler", "minutesAgo": 5},
    ]
    result = simulate.run(scenario.Scenario(base.playbook, "one-earlier-change", base.path, data))
    # THEN the circuit stays closed: the playbook asks and remediates
    assert result.passed, result.expect_failures
    assert result.outcome == "remediated"


def test_a_remediation_leaves_a_change_record_that_closes_the_circuit_after_two() -> None:
    records: list[dict[str, Any]] = []

    def read_records(account: LocalAccount, _: simulate.Result) -> None:
        records.extend(account.client("dynamodb").scan(TableName=account.resources["ChangesTable"])["Items"])

    # WHEN the playbook remediates
    result = simulate.run(scenario.load("lambda-throttling", "throttled"), inspect=read_records)
    # THEN its change record names the run, the locked resource and exactly the applied action, with before and after
    assert result.outcome == "remediated"
    [record] = records
    assert record["execution"]["S"] == result.executions[0]
    assert record["resource"]["S"] == "lambda-throttling#ingest-handler"
    [action] = json.loads(record["actions"]["S"])
    assert (action["api"], action["before"], action["after"]) == (
        "lambda:PutFunctionConcurrency",
        {"reservedConcurrentExecutions": 100},
        {"reservedConcurrentExecutions": 200},
    )


def test_a_run_that_changed_nothing_leaves_no_change_record() -> None:
    records: list[Any] = []

    def read_records(account: LocalAccount, _: simulate.Result) -> None:
        records.extend(account.client("dynamodb").scan(TableName=account.resources["ChangesTable"])["Items"])

    rejected = simulate.run(scenario.load("lambda-throttling", "throttled"), decision="reject", inspect=read_records)
    paused = simulate.run(scenario.load("lambda-throttling", "brake-engaged"), inspect=read_records)
    assert (rejected.outcome, paused.outcome, records) == ("rejected", "paused", [])


def test_a_fresh_deploy_leaves_the_brake_released() -> None:
    # Playbooks must work after a plain deploy: the switch exists and starts released.
    with LocalAccount() as account:
        value = account.client("ssm").get_parameter(Name=account.resources["BrakeParameter"])["Parameter"]["Value"]
    assert value == "released"
