"""The access-denied playbook, end to end in the local account (real ASL, real handlers)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from playbooks import scenario, simulate
from playbooks.local.account import TERMINAL, LocalAccount
from playbooks.local.recorder import RECORDER
from playbooks.project import ROOT

PLAYBOOK = "access-denied"
S3_FIX = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}


def run(name: str, **kwargs: Any) -> simulate.Result:
    return simulate.run(scenario.load(PLAYBOOK, name), **kwargs)


def put_role_policy_documents() -> list[dict[str, Any]]:
    """The identity policies the playbook wrote (not the scenario's world building)."""
    return [
        json.loads(c.params["PolicyDocument"])
        for c in RECORDER.calls
        if c.api == "iam:PutRolePolicy" and c.error is None and c.principal == "AccessDeniedStateMachine"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "missing-dynamodb-put",
        "bucket-policy-deny",
        "no-bucket-policy",
        "kms-decrypt",
        "key-policy-not-delegated",
        "unparseable-message",
        "protected-role",
        "control-characters-in-message",
        "inline-policy-quota",
        "key-policy-too-large",
        "inline-policy-grows-before-the-change",
        "grant-not-in-effect-by-the-deadline",
    ],
)
def test_scenario_meets_its_expectations(name: str) -> None:
    # WHEN the scenario runs with its own decision
    result = run(name)
    # THEN everything its `expect` block says holds
    assert result.passed, result.expect_failures


BUCKETS_OBJECTS_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/lambda-execution-role/transform-handler is not authorized to perform: "
    "s3:PutObject on resource: arn:aws:s3:::processed-data-bucket/* because no identity-based policy allows the s3:PutObject action"
)


@pytest.mark.parametrize("message", [None, BUCKETS_OBJECTS_MESSAGE], ids=["log-line-names-one-object", "message-names-the-buckets-objects"])
def test_missing_s3_put_adds_exactly_the_buckets_objects(message: str | None) -> None:
    # GIVEN the main scenario (the alarm's log line names .../out/2026/11/25/part-0001.parquet), or a message naming bucket/*
    loaded = scenario.load(PLAYBOOK, "missing-s3-put")
    if message:
        loaded.data["trigger"] = {"input": {"message": message, "config": {"verifyWaitSeconds": 5}}}
        loaded.data["expect"] = {"outcome": "remediated", "mutations": ["iam:PutRolePolicy lambda-execution-role"]}
    # WHEN it runs and the plan is approved
    result = simulate.run(loaded)
    # THEN its expectations hold and the playbook's inline policy holds exactly the bucket's objects, nothing broader
    assert result.passed, result.expect_failures
    assert put_role_policy_documents() == [{"Version": "2012-10-17", "Statement": [S3_FIX]}]


def _execute(account: LocalAccount, payload: dict[str, Any], actions: list[str] | None = None, deadline_s: float = 60) -> dict[str, Any]:
    """Start the playbook, approve what it asks (only `actions` if given), and return the finished execution's description."""
    arn = account.start(PLAYBOOK, payload)
    handled: set[str] = set()
    end = time.monotonic() + deadline_s
    while account.describe(arn)["status"] not in TERMINAL:
        for email in simulate.emails(RECORDER.calls):
            for ticket in set(simulate.LINK.findall(email.body)) - handled:
                handled.add(ticket)
                simulate.click(account, ticket, "approve", actions=actions)
        assert time.monotonic() < end, "the playbook did not finish in time"
        time.sleep(0.01)
    return account.describe(arn)


def test_handling_the_same_incident_twice_changes_nothing_the_second_time() -> None:
    loaded = scenario.load(PLAYBOOK, "missing-dynamodb-put")
    with LocalAccount(settings=loaded.settings()) as account:
        scenario.build_world(account, loaded.data["world"], datetime.now(UTC))
        first = _execute(account, loaded.data["trigger"]["input"])
        writes = len(put_role_policy_documents())
        policy = account.client("iam").get_role_policy(RoleName="lambda-execution-role", PolicyName="etl-playbooks-access-fix")[
            "PolicyDocument"
        ]
        # WHEN the same incident is handled again
        second = _execute(account, loaded.data["trigger"]["input"])
        # THEN the first run changed the policy once and the second found nothing to do and wrote nothing
        assert json.loads(first["output"])["outcome"] == "remediated"
        assert json.loads(second["output"])["outcome"] == "no-action"
        assert writes == 1 and len(put_role_policy_documents()) == 1
        # the failed pipeline execution was restarted once, by the first run, with its original input
        failed = loaded.data["trigger"]["input"]["failedExecutionArn"]
        original = account.client("stepfunctions").describe_execution(executionArn=failed)["input"]
        (restart,) = restarts()
        assert (restart["name"], restart["input"]) == ("3f9c2b1e-0d4a-4e8f-9b6c-2a1d0e9f8c7b-retry", original)
        after = account.client("iam").get_role_policy(RoleName="lambda-execution-role", PolicyName="etl-playbooks-access-fix")[
            "PolicyDocument"
        ]
        assert after == policy
        # the earlier statement of the playbook's policy is kept, the new one added once; other policies untouched
        assert [s["Action"] for s in after["Statement"]] == ["s3:PutObject", "dynamodb:PutItem"]
        assert account.client("iam").list_role_policies(RoleName="lambda-execution-role")["PolicyNames"] == [
            "LambdaS3Access",
            "etl-playbooks-access-fix",
        ]


def restarts() -> list[dict[str, Any]]:
    """The pipeline runs the playbook started: its restart function reads the failed run's input and starts them."""
    return [c.params for c in RECORDER.calls if c.api == "states:StartExecution" and c.principal == "StuckExecutionReprocessFunction"]


def test_approving_only_the_fix_restarts_nothing() -> None:
    loaded = scenario.load(PLAYBOOK, "missing-dynamodb-put")
    with LocalAccount(settings=loaded.settings()) as account:
        scenario.build_world(account, loaded.data["world"], datetime.now(UTC))
        done = _execute(account, loaded.data["trigger"]["input"], actions=["add_identity_statement"])
        assert json.loads(done["output"])["outcome"] == "remediated"
        assert len(put_role_policy_documents()) == 1 and restarts() == []


@pytest.mark.parametrize(("decision", "outcome"), [("reject", "rejected")])
def test_no_change_without_approval(decision: str, outcome: str) -> None:
    result = run("kms-decrypt", decision=decision)
    assert (result.status, result.outcome, result.mutations) == ("SUCCEEDED", outcome, [])


def test_dry_run_reports_the_plan_and_changes_nothing() -> None:
    result = run("missing-dynamodb-put", dry_run=True)
    assert (result.outcome, result.mutations) == ("dry-run", [])
    assert "Ask an approver" not in result.states
    assert any('Statement to add: {"Action": "dynamodb:PutItem"' in e["body"] for e in result.emails)


def test_without_cloudtrail_the_ciphertext_message_is_escalated_not_guessed() -> None:
    # GIVEN CloudTrail cannot be read, so nothing names the key behind "this ciphertext"
    loaded = scenario.load(PLAYBOOK, "kms-decrypt")
    loaded.data["faults"] = [{"api": "cloudtrail:LookupEvents", "error": "AccessDeniedException", "times": 5}]
    loaded.data["expect"] = {}
    result = simulate.run(loaded)
    # THEN the playbook goes on without it, proposes nothing and says why
    assert (result.status, result.outcome, result.mutations) == ("SUCCEEDED", "escalated", [])
    assert "Ask the policy simulator" not in result.states
    report = next(e["body"] for e in result.emails if e["subject"].startswith("[escalated]"))
    assert "CloudTrail event history could not be read" in report
    assert 'never grants on Resource "*"' in report


def test_alarm_sample_reaches_the_playbook_through_the_templates_rule() -> None:
    event = json.loads((ROOT / "events" / "access-denied-alarm.json").read_text())
    with LocalAccount() as account:
        started = account.put_event(event)
        assert [arn.split(":")[6] for arn in started] == [account.state_machine_arn(PLAYBOOK).split(":")[-1]]
        # the alarm firing again starts another execution (EventBridge names each one afresh)
        again = account.put_event(event)
        assert len(again) == 1 and again != started


@pytest.mark.parametrize("name", ["restart-once-the-grant-is-in-effect", "grant-slow-to-show"])
def test_the_failed_run_is_restarted_only_once_the_grant_is_in_effect(name: str) -> None:
    # GIVEN the pipeline's workflow as deployed (its calls authorized under lambda-execution-role), whose run failed on
    # the denied PutItem, and an account where a policy change governs authorization only after it propagates (and,
    # in grant-slow-to-show, shows in the simulator only then, 180 s later)
    seen: dict[str, Any] = {}

    def pipeline_runs(account: LocalAccount, result: simulate.Result) -> None:
        sfn = account.client("stepfunctions")
        machine = f"arn:aws:states:{account.region}:{account.account_id}:stateMachine:etl-workflow"
        end = time.monotonic() + 30
        while any(e["status"] == "RUNNING" for e in sfn.list_executions(stateMachineArn=machine)["executions"]):
            assert time.monotonic() < end, "the restarted pipeline run did not finish in time"
            time.sleep(0.01)
        for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
            seen[execution["name"]] = sfn.describe_execution(executionArn=execution["executionArn"])
        seen["recorded"] = account.client("dynamodb").scan(TableName="etl-metadata")["Items"]

    # WHEN the playbook fixes the grant and restarts the run
    result = run(name, inspect=pipeline_runs)
    # THEN the original run had failed on the denial, and the restart, started once the grant was in effect, succeeded
    original, restarted = seen["3f9c2b1e-0d4a-4e8f-9b6c-2a1d0e9f8c7b"], seen["3f9c2b1e-0d4a-4e8f-9b6c-2a1d0e9f8c7b-retry"]
    assert original["status"] == "FAILED"
    assert restarted["status"] == "SUCCEEDED", restarted.get("cause")
    assert [item["objectKey"]["S"] for item in seen["recorded"]] == ["in/2026/11/25/part-0007.csv"]
    assert result.passed, result.expect_failures


def test_a_failed_run_with_a_large_input_is_restarted_without_the_input_passing_through_the_playbook() -> None:
    # GIVEN a failed pipeline run whose input is about 200 KB (the workflow passes its data between states)
    seen: dict[str, Any] = {}

    def inspect(account: LocalAccount, result: simulate.Result) -> None:
        sfn = account.client("stepfunctions")
        history = sfn.get_execution_history(executionArn=result.executions[0], maxResults=1000)["events"]
        details = [v for e in history for k, v in e.items() if k.endswith("EventDetails") and isinstance(v, dict)]
        seen["largest"] = max(len(str(d.get(field, ""))) for d in details for field in ("input", "output", "parameters"))
        failed = result.report["target"]["failedExecutionArn"] if result.report else ""
        seen["original"] = sfn.describe_execution(executionArn=failed)["input"]
        seen["restarted"] = sfn.describe_execution(executionArn=failed + "-retry")["input"]

    # WHEN the playbook fixes the grant and restarts the run
    result = run("restart-with-a-large-input", inspect=inspect)
    # THEN the run is restarted byte for byte with its input, and no state of the playbook held that input
    assert result.passed, result.expect_failures
    assert len(seen["original"]) > 200 * 1024 and seen["restarted"] == seen["original"]
    assert seen["largest"] < 32 * 1024
