"""The lambda-throttling playbook, end to end in the local account (real ASL, real handlers)."""

from __future__ import annotations

import json

import pytest

from playbooks import scenario, simulate
from playbooks.local.account import LocalAccount
from playbooks.project import ROOT

PLAYBOOK = "lambda-throttling"


def run(name: str, **kwargs: object) -> simulate.Result:
    return simulate.run(scenario.load(PLAYBOOK, name), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["throttled", "account-limit", "false-alarm", "self-throttled", "quota-request-open", "zero-reservation"])
def test_scenario_meets_its_expectations(name: str) -> None:
    # WHEN the scenario runs with its own decision
    result = run(name)
    # THEN everything its `expect` block says holds
    assert result.passed, result.expect_failures


def test_approved_raise_is_the_only_change() -> None:
    result = run("throttled", decision="approve")
    assert result.outcome == "remediated"
    assert result.mutations == ["lambda:PutFunctionConcurrency ingest-handler"]


@pytest.mark.parametrize(("decision", "outcome"), [("reject", "rejected"), ("expire", "expired")])
def test_no_change_without_approval(decision: str, outcome: str) -> None:
    result = run("throttled", decision=decision)
    assert (result.status, result.outcome, result.mutations) == ("SUCCEEDED", outcome, [])
    assert "Raise reserved concurrency" not in result.states


def test_dry_run_reports_the_plan_and_changes_nothing() -> None:
    result = run("throttled", dry_run=True)
    assert (result.outcome, result.mutations) == ("dry-run", [])
    assert "Ask an approver" not in result.states
    assert any(
        "Raise reserved concurrency of ingest-handler from 100 to 200" in e["body"] or "dry-run" in e["subject"] for e in result.emails
    )


def test_account_limit_never_touches_reserved_concurrency() -> None:
    result = run("account-limit")
    assert not any("PutFunctionConcurrency" in m for m in result.mutations)
    assert result.mutations == ["servicequotas:RequestServiceQuotaIncrease lambda/L-B99A9384"]


def test_self_throttled_playbook_retries_its_own_invocations() -> None:
    result = run("self-throttled")
    # two throttled attempts of the first invoke and one later are retried: 3 more invocations than states need
    clean = run("throttled")
    assert result.outcome == "remediated"
    assert result.lambda_invocations == clean.lambda_invocations + 3
    assert result.simulated_wait_s > 0


def test_escalates_with_rollback_when_throttling_continues(tmp_path: object) -> None:
    data = scenario.load(PLAYBOOK, "throttled")
    data.data["reactions"] = [
        {
            "after": "lambda:PutFunctionConcurrency",
            "metrics": [
                # throttles two minutes after the change (a throttle in the change's own minute may predate it)
                {"namespace": "AWS/Lambda", "metric": "Throttles", "dimensions": {"FunctionName": "ingest-handler"}, "values": {"-2": 12}}
            ],
        }
    ]
    data.data["expect"] = {}
    result = simulate.run(data)
    assert result.outcome == "escalated"
    report = next(e for e in result.emails if e["subject"].startswith("[escalated]"))
    assert '"ReservedConcurrentExecutions": 100' in report["body"]  # the recorded previous value, offered as rollback


def test_alarm_sample_reaches_the_playbook_through_the_templates_rule() -> None:
    event = json.loads((ROOT / "events" / "lambda-throttling-alarm.json").read_text())
    with LocalAccount() as account:
        started = account.put_event(event)
        assert [arn.split(":")[6] for arn in started] == [account.state_machine_arn(PLAYBOOK).split(":")[-1]]
        # an unrelated alarm's event starts nothing
        other = dict(event, resources=["arn:aws:cloudwatch:us-east-1:123456789012:alarm:SomethingElse"])
        assert account.put_event(other) == []
