"""Undo's logic on moto: facets, drift, inverses and their verification (the state machine runs it in tests/playbooks)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from playbooks import project

undo = project.import_function_module("undo")

ROLE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def aws() -> Iterator[Callable[[str], Any]]:
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            return clients.setdefault(service, boto3.client(service, region_name="us-east-1"))  # type: ignore[call-overload]

        yield client


def action(api: str, target: str, before: Any, after: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"a{abs(hash((api, target, json.dumps(after, sort_keys=True)))) % 1000}",
        "api": api,
        "target": target,
        "description": api,
        "before": before,
        "after": after,
    } | extra


def test_a_rule_disabled_then_re_enabled_by_the_run_has_nothing_to_undo() -> None:
    found, irreversible = undo.facets(
        [
            action("events:DisableRule", "r", {"state": "ENABLED"}, {"state": "DISABLED"}),
            action("states:StopExecution", "m", {"running": 3}, {"running": 0}),
            action("events:EnableRule", "r", {"state": "DISABLED"}, {"state": "ENABLED"}),
        ]
    )
    assert [(f["kind"], f["before"], f["after"]) for f in found] == [("rule-state", "ENABLED", "ENABLED")]
    assert [i["reason"].split(";")[0] for i in irreversible] == ["A stopped execution cannot be resumed where it stopped"]


def test_an_execution_the_run_started_and_still_running_is_stopped_and_counts_as_undone(aws: Callable[[str], Any]) -> None:
    sfn = aws("stepfunctions")
    role = aws("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))["Role"]["Arn"]
    machine = sfn.create_state_machine(
        name="etl-workflow",
        definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name="retry-1", input="{}")
    record = {
        "execution": "arn:x:run",
        "playbook": "execution-stuck",
        "actions": [action("states:StartExecution", machine, {"execution": None}, {"name": "retry-1"})],
    }
    # WHEN the undo plans, applies and verifies
    plan = undo.inverse_plan(record, aws)
    [inverse] = plan["actions"]
    assert inverse["api"] == "states:StopExecution"
    applied = undo.apply_approved(plan, [inverse["id"]], aws)
    # THEN the execution is stopped, with the undo's error, and verification accepts that as the way back
    assert undo.verify(plan, [inverse["id"]], applied["applied"], undo.CONFIG_DEFAULTS, aws)["restored"] is True
    described = sfn.describe_execution(executionArn=inverse["target"])
    assert described["status"] == "ABORTED"


def test_only_the_playbook_s_statement_is_removed_and_later_statements_stay(aws: Callable[[str], Any]) -> None:
    iam = aws("iam")
    iam.create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))
    ours = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
    theirs = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:q"}
    # GIVEN the run created the policy with its statement, and someone added another statement since
    iam.put_role_policy(
        RoleName="pipeline", PolicyName="fix", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [ours, theirs]})
    )
    put = action("iam:PutRolePolicy", "pipeline", {"policyName": "fix", "document": None}, {"policyName": "fix"}, statement=ours)
    plan = undo.inverse_plan({"execution": "arn:x:run", "playbook": "access-denied", "actions": [put]}, aws)
    [inverse] = plan["actions"]
    applied = undo.apply_approved(plan, [inverse["id"]], aws)
    # THEN only the playbook's statement is gone; the policy stays for the other one
    document = iam.get_role_policy(RoleName="pipeline", PolicyName="fix")["PolicyDocument"]
    assert document["Statement"] == [theirs]
    assert undo.verify(plan, [inverse["id"]], applied["applied"], undo.CONFIG_DEFAULTS, aws)["restored"] is True


def test_a_reservation_created_by_the_run_is_deleted(aws: Callable[[str], Any]) -> None:
    lam = aws("lambda")
    role = aws("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))["Role"]["Arn"]
    lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="a.h", Code={"ZipFile": b"x"})
    lam.put_function_concurrency(FunctionName="f", ReservedConcurrentExecutions=50)
    put = action("lambda:PutFunctionConcurrency", "f", {"reservedConcurrentExecutions": None}, {"reservedConcurrentExecutions": 50})
    plan = undo.inverse_plan({"execution": "arn:x:run", "playbook": "lambda-throttling", "actions": [put]}, aws)
    [inverse] = plan["actions"]
    assert inverse["api"] == "lambda:DeleteFunctionConcurrency"
    undo.apply_approved(plan, [inverse["id"]], aws)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="f")
    # a second undo finds it already back and proposes nothing
    assert undo.inverse_plan({"execution": "arn:x:run", "playbook": "lambda-throttling", "actions": [put]}, aws)["actions"] == []


def test_lifecycle_rules_go_back_exactly_or_the_configuration_is_deleted(aws: Callable[[str], Any]) -> None:
    s3 = aws("s3")
    theirs = {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    ours = {
        "ID": "tiering",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
    }
    # GIVEN the run wrote its rule into a bucket that had one rule, and into one that had none
    for bucket, before in (("kept", [theirs]), ("bare", [])):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*before, ours]})
    puts = [
        action("s3:PutBucketLifecycleConfiguration", bucket, {"lifecycleRules": before}, {"rules": [*before, ours]})
        for bucket, before in (("kept", [theirs]), ("bare", []))
    ]
    record = {"execution": "arn:x:run", "playbook": "cost-spike", "actions": puts}
    # WHEN the undo plans, applies and verifies
    plan = undo.inverse_plan(record, aws)
    assert [(a["api"], a["target"]) for a in plan["actions"]] == [
        ("s3:PutBucketLifecycleConfiguration", "kept"),
        ("s3:DeleteBucketLifecycle", "bare"),
    ]
    applied = undo.apply_approved(plan, [a["id"] for a in plan["actions"]], aws)
    # THEN the first holds exactly its one rule again and the second has no lifecycle configuration at all
    assert s3.get_bucket_lifecycle_configuration(Bucket="kept")["Rules"] == [theirs]
    with pytest.raises(ClientError) as raised:
        s3.get_bucket_lifecycle_configuration(Bucket="bare")
    assert raised.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    assert undo.verify(plan, [a["id"] for a in plan["actions"]], applied["applied"], undo.CONFIG_DEFAULTS, aws)["restored"] is True
    # a second undo finds both back and proposes nothing
    assert undo.inverse_plan(record, aws)["actions"] == []


def test_a_lifecycle_rule_added_since_the_run_leaves_the_bucket_alone(aws: Callable[[str], Any]) -> None:
    s3 = aws("s3")
    ours = {
        "ID": "tiering",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
    }
    someone = {"ID": "expire-scratch", "Filter": {"Prefix": "scratch/"}, "Status": "Enabled", "Expiration": {"Days": 3}}
    s3.create_bucket(Bucket="bare")
    # GIVEN the run added its rule to a bucket with none, and someone added a rule since
    s3.put_bucket_lifecycle_configuration(Bucket="bare", LifecycleConfiguration={"Rules": [ours, someone]})
    put = action("s3:PutBucketLifecycleConfiguration", "bare", {"lifecycleRules": []}, {"rules": [ours]})
    plan = undo.inverse_plan({"execution": "arn:x:run", "playbook": "cost-spike", "actions": [put]}, aws)
    # THEN deleting the configuration would drop their rule: nothing is proposed, and the plan says what it holds
    assert plan["actions"] == []
    assert "expire-scratch" in plan["drifted"][0]


class _StillUpdating:
    """A Lambda client whose function is still being updated (LastUpdateStatus InProgress), as right after a change."""

    def __init__(self, lam: Any):
        self._lam = lam

    def get_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self._lam.get_function_configuration(**kwargs)) | {"LastUpdateStatus": "InProgress"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lam, name)


def test_an_inverse_waits_while_aws_is_still_updating_and_counts_only_when_finished(aws: Callable[[str], Any]) -> None:
    lam = aws("lambda")
    role = aws("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))["Role"]["Arn"]
    lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="a.h", Code={"ZipFile": b"x"}, MemorySize=448)
    change = action("lambda:UpdateFunctionConfiguration", "f", {"memorySize": 1024}, {"memorySize": 448})
    plan = undo.inverse_plan({"execution": "arn:x:run", "playbook": "cost-spike", "actions": [change]}, aws)
    [inverse] = plan["actions"]

    def updating(service: str) -> Any:
        return _StillUpdating(lam) if service == "lambda" else aws(service)

    # WHEN the function is still being updated: the inverse is not applied (AWS would refuse it) and the step retries
    with pytest.raises(undo.ResourceBusy):
        undo.apply_approved(plan, [inverse["id"]], updating)
    assert lam.get_function_configuration(FunctionName="f")["MemorySize"] == 448
    # THEN once applied, a memory already back but still InProgress is not restored yet: the undo polls again
    applied = undo.apply_approved(plan, [inverse["id"]], aws)["applied"]
    result = undo.verify(plan, [inverse["id"]], applied, undo.CONFIG_DEFAULTS, updating)
    assert (result["restored"], result["settling"]) == (False, True)
    assert undo.verify(plan, [inverse["id"]], applied, undo.CONFIG_DEFAULTS, aws)["restored"] is True
