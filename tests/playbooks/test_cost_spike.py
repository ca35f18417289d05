"""The cost-spike playbook, end to end in the local account (real ASL, real handlers)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from playbooks import safety, scenario, simulate
from playbooks.local.account import TERMINAL, LocalAccount
from playbooks.local.recorder import RECORDER
from playbooks.project import ROOT

PLAYBOOK = "cost-spike"
OUTSIDE_SCOPE = ("other-team-handler", "reporting-cache", "other-team-bucket", "/aws/lambda/other-team-handler")


@pytest.fixture(scope="module")
def everything() -> simulate.Result:
    return run("everything")


def run(name: str, **kwargs: Any) -> simulate.Result:
    return simulate.run(scenario.load(PLAYBOOK, name), **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "overprovisioned-memory",
        "idle-provisioned-table",
        "log-retention",
        "nothing-to-save",
        "account-retention-policy",
        "updates-still-in-progress",
    ],
)
def test_scenario_meets_its_expectations(name: str) -> None:
    result = run(name)
    assert result.passed, result.expect_failures


def test_partial_approval_applies_only_the_approved_actions(everything: simulate.Result) -> None:
    # GIVEN six proposed savings of which the approver ticked three
    assert everything.passed, everything.expect_failures
    report = everything.report or {}
    assert len(report["proposed"]) == 6
    # THEN exactly those three were changed and verified; the other three are reported as declined
    assert everything.mutations == [
        "lambda:UpdateFunctionConfiguration transform-handler",
        "dynamodb:UpdateTable etl-metadata",
        "cloudwatchlogs:PutRetentionPolicy /aws/lambda/ingest-handler",
    ]
    assert [check["id"] for check in report["verification"]["checks"]] == [
        "lower_memory_transform_handler",
        "switch_to_on_demand_etl_metadata",
        "set_log_retention_aws_lambda_ingest_handler",
    ]
    assert len(report["declined"]) == 3 and all("Intelligent-Tiering" in d or "transform-handler" in d for d in report["declined"])
    assert any("run the event-loop playbook" in item for item in report["recommendations"])


def test_resources_outside_the_pipeline_are_never_proposed_or_touched(everything: simulate.Result) -> None:
    texts = [everything.report and json.dumps(everything.report)] + [e["body"] for e in everything.emails]
    assert not any(name in str(text) for name in OUTSIDE_SCOPE for text in texts)
    assert not any(name in mutation for name in OUTSIDE_SCOPE for mutation in everything.mutations)


def test_memory_never_goes_below_the_observed_peak_plus_headroom(everything: simulate.Result) -> None:
    report = everything.report or {}
    (check,) = [c for c in report["verification"]["checks"] if c["id"] == "lower_memory_transform_handler"]
    assert check["actual"]["memorySize"] == 448 >= 301 * 1.3


@pytest.mark.parametrize(("decision", "outcome"), [("reject", "rejected"), ("expire", "expired")])
def test_no_change_without_approval(decision: str, outcome: str) -> None:
    result = run("overprovisioned-memory", decision=decision)
    assert (result.status, result.outcome, result.mutations) == ("SUCCEEDED", outcome, [])


def test_dry_run_reports_the_plan_and_changes_nothing() -> None:
    result = run("log-retention", dry_run=True)
    assert (result.outcome, result.mutations) == ("dry-run", [])
    assert "Ask an approver" not in result.states
    assert any("Set retention of /aws/lambda/ingest-handler from never expire to 7 days" in e["body"] for e in result.emails)


def _run_to_the_end(
    account: LocalAccount, execution: str, before_approving: Callable[[], None] = lambda: None, deadline_s: float = 60.0
) -> dict[str, Any]:
    """Approve every approval e-mail of `execution` through the approval page until it ends."""
    handled: set[str] = set()
    end = time.monotonic() + deadline_s
    while account.describe(execution)["status"] not in TERMINAL:
        for email in simulate.emails(RECORDER.calls):
            for ticket in set(simulate.LINK.findall(email.body)) - handled:
                handled.add(ticket)
                before_approving()
                simulate.click(account, ticket, "approve")
        assert time.monotonic() < end, "the execution did not finish in time"
        time.sleep(0.01)
    return json.loads(account.describe(execution).get("output") or "{}")


def test_running_the_remediation_twice_changes_nothing_the_second_time() -> None:
    data = scenario.load(PLAYBOOK, "log-retention").data
    with LocalAccount() as account:
        scenario.build_world(account, data["world"], datetime.now(UTC))
        principals = {"CostSpikeStateMachine"} | {f.logical_id for f in account.functions.values()}
        own = set(account.resources.values()) | set(account.functions)
        first = _run_to_the_end(account, account.start(PLAYBOOK, data["trigger"]["input"]))
        changes = safety.mutations(RECORDER.calls, principals, own)
        second = _run_to_the_end(account, account.start(PLAYBOOK, data["trigger"]["input"]))
        assert (first["outcome"], second["outcome"]) == ("remediated", "no-action")
        assert len(changes) == 2
        assert safety.mutations(RECORDER.calls, principals, own) == changes


def test_a_resource_changed_since_the_plan_is_left_alone() -> None:
    # GIVEN the plan lowers transform-handler from 1024 MB, but someone raises it to 2048 MB before the approval
    data = scenario.load(PLAYBOOK, "overprovisioned-memory").data
    with LocalAccount() as account:
        scenario.build_world(account, data["world"], datetime.now(UTC))

        def raise_memory() -> None:
            account.client("lambda").update_function_configuration(FunctionName="transform-handler", MemorySize=2048)

        output = _run_to_the_end(account, account.start(PLAYBOOK, data["trigger"]["input"]), before_approving=raise_memory)
        memory = account.client("lambda").get_function_configuration(FunctionName="transform-handler")["MemorySize"]
    # THEN the approved change is not applied over the newer setting, and the run escalates saying why
    assert (output["outcome"], memory) == ("escalated", 2048)
    assert output["result"]["report"]["verification"]["changedSincePlan"] == ["lower_memory_transform_handler"]


def test_a_redelivered_notification_starts_no_second_run() -> None:
    # GIVEN SNS delivers the same budget alert twice (at-least-once delivery)
    event = json.loads((ROOT / "events" / "cost-spike-budget-alert.json").read_text())
    with LocalAccount() as account:
        first = account.invoke_handler("CostSpikeStarterFunction", event)
        again = account.invoke_handler("CostSpikeStarterFunction", event)
        # THEN the execution is named after the message: the second start is the same execution, not a new one
        assert first["executions"] == again["executions"]
        executions = account.client("stepfunctions").list_executions(stateMachineArn=account.state_machine_arn(PLAYBOOK))["executions"]
        assert [e["name"] for e in executions] == ["sns-6b2f8d3a-1c4e-5f7a-9b0d-2e4f6a8c0b1d"]


# Defect 6: the playbook enabled an Intelligent-Tiering configuration, which moves no Standard object, priced the saving
# on Standard bytes and verified it by reading the configuration back. It now adds a lifecycle transition into the
# INTELLIGENT_TIERING class, keeping the bucket's other rules, and prices Intelligent-Tiering's fees.
def test_approved_tiering_moves_the_objects_and_keeps_the_other_lifecycle_rules() -> None:
    rules: dict[str, list[dict[str, Any]]] = {}

    def inspect(account: LocalAccount, result: simulate.Result) -> None:
        for bucket in ("raw-data-bucket", "processed-data-bucket"):
            rules[bucket] = account.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]

    result = run("approve-all", inspect=inspect)
    assert result.outcome == "remediated"
    for bucket in ("raw-data-bucket", "processed-data-bucket"):
        transitions = [t for rule in rules[bucket] if rule["Status"] == "Enabled" for t in rule.get("Transitions", [])]
        assert {"Days": 0, "StorageClass": "INTELLIGENT_TIERING"} in transitions, bucket
    assert [rule["ID"] for rule in rules["processed-data-bucket"]] == ["expire-tmp", "etl-playbooks-intelligent-tiering"]
    approval = next(e for e in result.emails if e["subject"].startswith("[approval needed]"))
    assert "monitoring" in approval["body"]  # the fee is priced, not only the storage saving
