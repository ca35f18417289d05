"""The access-denied playbook's logic without AWS: guards, the least statement, the plan's cases, the idempotent merge."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import access_denied as ad
from shared.errors import PlaybookError

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lambda-execution-role"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-execution-role/transform-handler"
SETTINGS = {"pipelineRoles": ["lambda-execution-role"], "protectedRoles": ["OrganizationAccountAccessRole"], "stackName": "etl-playbooks"}
S3_OBJECT = "arn:aws:s3:::processed-data-bucket/out/2026/11/25/part-0001.parquet"


def message(
    action: str = "s3:PutObject",
    resource: str = S3_OBJECT,
    principal: str = SESSION,
    reason: str = "because no identity-based policy allows it",
) -> str:
    return f'User: {principal} is not authorized to perform: {action} on resource: "{resource}" {reason}'


def findings(
    msg: str,
    decision: str = "implicitDeny",
    fix_policy: dict[str, Any] | None = None,
    resource_policy: dict[str, Any] | None = None,
    matched: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    parsed = ad.read_message(msg, ACCOUNT, SETTINGS, "2026-11-25T02:00:00Z")
    resource = parsed.get("resource")
    denied: dict[str, Any] = {"action": parsed.get("action"), "resourceKnown": resource is not None}
    if resource:
        denied |= {"resource": resource, "resourceFrom": "message"}
        if ":s3:::" in resource:
            denied["bucket"] = resource.split(":::")[1].split("/")[0]
        if ":key/" in resource:
            denied["keyArn"] = resource
    result: dict[str, Any] = {
        "parsed": parsed,
        "identity": {
            "role": {"name": "lambda-execution-role", "arn": ROLE_ARN, "inline": [], "attached": [], "fixPolicy": fix_policy},
            "denied": denied,
            "cloudtrail": {"available": True, "denied": []},
        },
        "simulation": {"results": [{"EvalDecision": decision, "MatchedStatements": matched or []}]},
    }
    if resource_policy is not None:
        result["resourcePolicy"] = {"policy": json.dumps(resource_policy)}
    return result


def plan(f: dict[str, Any]) -> dict[str, Any]:
    return ad.plan({}, f, {})


# ------------------------------------------------------------------------------------------- the least statement
@pytest.mark.parametrize("resource", [S3_OBJECT, "arn:aws:s3:::processed-data-bucket/*"])
def test_s3_statement_is_the_buckets_objects_whatever_the_message_names(resource: str) -> None:
    result = plan(findings(message(resource=resource)))
    (action,) = result["actions"]
    assert action["statement"] == {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}
    assert action["after"]["document"]["Statement"] == [action["statement"]]
    assert action["rollback"] == {
        "api": "iam:DeleteRolePolicy",
        "parameters": {"RoleName": "lambda-execution-role", "PolicyName": "etl-playbooks-access-fix"},
    }


def test_existing_playbook_policy_is_extended_and_its_old_document_kept_for_rollback() -> None:
    earlier = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}],
    }
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/etl-metadata"
    result = plan(findings(message("dynamodb:PutItem", table), fix_policy=earlier))
    (action,) = result["actions"]
    assert action["after"]["document"]["Statement"] == [
        *earlier["Statement"],
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table},
    ]
    assert json.loads(action["rollback"]["parameters"]["PolicyDocument"]) == earlier


# ------------------------------------------------------------------------------------------- guards
@pytest.mark.parametrize(
    ("action", "refused"),
    [
        ("s3:PutObject", False),
        ("kms:Decrypt", False),
        ("s3:*", True),
        ("*:*", True),
        ("s3:Put*", True),
        ("iam:PassRole", True),
        ("sts:AssumeRole", True),
        ("kms:PutKeyPolicy", True),
        ("kms:ScheduleKeyDeletion", True),
        ("kms:CreateGrant", True),
    ],
)
def test_action_guard(action: str, refused: bool) -> None:
    assert (ad.action_refusal(action) is not None) == refused


@pytest.mark.parametrize(
    ("resource", "refused"),
    [
        ("*", True),
        ("arn:aws:s3:::*", True),
        ("arn:aws:s3:::bucket/*", False),
        ("arn:aws:dynamodb:us-east-1:1:table/*", True),
        ("bucket", True),
    ],
)
def test_resource_guard(resource: str, refused: bool) -> None:
    assert (ad.resource_refusal(resource) is not None) == refused


@pytest.mark.parametrize(
    ("principal", "why"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/OrganizationAccountAccessRole/jane", "protected list"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForSupport/s", "service-linked"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/etl-playbooks-AccessDeniedPlanFunctionRole-X1/s", "playbooks' own roles"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/reporting-role/s", "not one of the pipeline's roles"),
        ("arn:aws:sts::210987654321:assumed-role/lambda-execution-role/s", "belongs to account 210987654321"),
        (f"arn:aws:iam::{ACCOUNT}:user/alice", "not a role"),
    ],
)
def test_roles_the_playbook_never_touches_are_escalated_before_anything_is_read(principal: str, why: str) -> None:
    parsed = ad.read_message(message(principal=principal), ACCOUNT, SETTINGS, "2026-11-25T02:00:00Z")
    assert parsed["actionable"] is False
    result = plan({"parsed": parsed})
    assert (result["case"], result["disposition"], result["actions"]) == ("refused", "escalate", [])
    assert why in result["summary"]


def test_a_resource_in_another_account_is_refused() -> None:
    result = plan(findings(message("sqs:SendMessage", "arn:aws:sqs:us-east-1:210987654321:partner-queue")))
    assert (result["case"], result["actions"]) == ("refused", [])
    assert "belongs to account 210987654321" in result["summary"]


def test_a_forbidden_action_is_refused() -> None:
    parsed = ad.read_message(message("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin"), ACCOUNT, SETTINGS, "t")
    assert not parsed["actionable"] and "administers identities" in parsed["refusal"]


def test_write_time_guard_refuses_a_tampered_statement() -> None:
    action = plan(findings(message()))["actions"][0]
    tampered = copy.deepcopy(action) | {"statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}
    with pytest.raises(PlaybookError, match="refusing to write"):
        ad.merge(None, tampered)


# ------------------------------------------------------------------------------------------- cases
def test_unparseable_and_missing_lines_are_no_action() -> None:
    unreadable = plan({"parsed": ad.read_message("Access Denied", ACCOUNT, SETTINGS, "t")})
    nothing = plan({"parsed": ad.read_message(None, ACCOUNT, SETTINGS, "t")})
    assert (unreadable["case"], unreadable["disposition"]) == ("unparseable", "no-action")
    assert "cannot be read" in unreadable["summary"]
    assert (nothing["case"], nothing["disposition"]) == ("no-denied-line", "no-action")


def test_explicit_deny_in_bucket_policy_is_quoted_and_escalated() -> None:
    deny = {
        "Sid": "Freeze",
        "Effect": "Deny",
        "Principal": {"AWS": ROLE_ARN},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::processed-data-bucket/out/*",
    }
    result = plan(
        findings(message(reason="with an explicit deny in a resource-based policy"), "allowed", resource_policy={"Statement": [deny]})
    )
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-resource-policy", "escalate", [])
    assert json.dumps(deny, sort_keys=True) in result["summary"]


def test_a_conditional_tls_deny_does_not_block_the_fix() -> None:
    tls = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::processed-data-bucket/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    result = plan(findings(message(), resource_policy={"Statement": [tls]}))
    assert result["case"] == "missing-identity-permission"


def test_explicit_deny_in_identity_policy_is_escalated() -> None:
    result = plan(findings(message(), "explicitDeny", matched=[{"SourcePolicyId": "GuardRails"}]))
    assert (result["case"], result["disposition"]) == ("explicit-deny-in-identity-policy", "escalate")
    assert "GuardRails" in result["summary"]


@pytest.mark.parametrize(
    "reason", ["with an explicit deny in a service control policy", "because no permissions boundary allows the s3:PutObject action"]
)
def test_denials_outside_identity_policies_are_escalated(reason: str) -> None:
    assert plan(findings(message(reason=reason)))["case"] == "denied-outside-identity-policies"


def test_already_allowed_is_no_action() -> None:
    assert plan(findings(message(), "allowed"))["disposition"] == "no-action"


def test_statement_present_yet_denied_is_escalated_not_added_again() -> None:
    present = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}],
    }
    assert plan(findings(message(), fix_policy=present))["case"] == "statement-present-but-denied"


KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0f6c3a52"


ADMIN = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/etl-key-admin"}, "Action": "kms:*", "Resource": "*"}
KEY_POLICY_CHANGES_BY_IAM = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy"],
    "Resource": "*",
}
DECRYPT_FOR_THE_ROLE = {
    "Sid": "EtlPlaybooksAccessFixLambdaExecutionRoleDecrypt",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE_ARN},
    "Action": "kms:Decrypt",
    "Resource": KEY,
}


def test_key_policy_without_the_role_gets_one_statement() -> None:
    # GIVEN a key policy that enables IAM policies only for reading and changing the key policy (the playbook's grants)
    key_policy = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM]}
    result = plan(findings(message("kms:Decrypt", KEY), "allowed", resource_policy=key_policy))
    (action,) = result["actions"]
    assert result["case"] == "missing-kms-grant"
    assert action["statement"] == DECRYPT_FOR_THE_ROLE
    assert json.loads(action["rollback"]["parameters"]["Policy"]) == key_policy


def test_a_key_policy_the_playbook_cannot_change_is_escalated_with_the_statement_to_add() -> None:
    # GIVEN a key policy readable by the playbook's role but not enabling IAM policies for PutKeyPolicy
    key_policy = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM | {"Action": "kms:GetKeyPolicy"}]}
    result = plan(findings(message("kms:Decrypt", KEY), "allowed", resource_policy=key_policy))
    # THEN nothing is proposed; a key administrator is given the exact statement
    assert (result["case"], result["disposition"], result["actions"]) == ("key-policy-not-delegated", "escalate", [])
    assert json.dumps(DECRYPT_FOR_THE_ROLE, sort_keys=True) in result["summary"]
    assert "Nothing was changed" in result["summary"]


def test_a_key_policy_kms_refuses_to_show_is_escalated_with_the_statement_to_add() -> None:
    # GIVEN KMS refused the playbook's read of the key policy
    denied = findings(message("kms:Decrypt", KEY), "allowed")
    denied["keyPolicyError"] = {
        "Error": "Kms.KmsException",
        "Cause": f"User: arn:aws:sts::{ACCOUNT}:assumed-role/etl-playbooks-AccessDeniedStateMachineRole-X/s is not authorized "
        f"to perform: kms:GetKeyPolicy on resource: {KEY} because no resource-based policy allows the kms:GetKeyPolicy action",
    }
    result = plan(denied)
    assert (result["case"], result["disposition"], result["actions"]) == ("key-policy-unreadable", "escalate", [])
    assert json.dumps(DECRYPT_FOR_THE_ROLE, sort_keys=True) in result["summary"]
    assert "EnableIamPoliciesForKeyPolicyChanges" in result["summary"]


def test_key_policy_delegating_to_iam_means_an_identity_statement() -> None:
    key_policy = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]
    }
    result = plan(findings(message("kms:Decrypt", KEY), "implicitDeny", resource_policy=key_policy))
    assert result["case"] == "missing-identity-permission"
    assert result["actions"][0]["statement"] == {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}


# ------------------------------------------------------------------------------------------- apply twice
def test_merge_writes_once_then_changes_nothing() -> None:
    action = plan(findings(message()))["actions"][0]
    first = ad.merge(None, action)
    assert first["changed"] is True
    second = ad.merge(json.loads(first["document"]), action)
    assert second["changed"] is False
    assert json.loads(second["document"]) == json.loads(first["document"])


def test_merge_refuses_when_the_policy_changed_since_approval() -> None:
    action = plan(findings(message()))["actions"][0]
    other = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"}],
    }
    with pytest.raises(PlaybookError, match="changed since the plan was approved"):
        ad.merge(other, action)


def test_statement_matching_follows_iam_wildcards() -> None:
    statement = {"Effect": "Allow", "Action": "S3:Put*", "NotResource": "arn:aws:s3:::raw-data-bucket/*"}
    assert ad.statement_covers(statement, "s3:PutObject", "arn:aws:s3:::processed-data-bucket/x")
    assert not ad.statement_covers(statement, "s3:PutObject", "arn:aws:s3:::raw-data-bucket/x")
    assert not ad.statement_covers({"Action": "s3:GetObject", "Resource": "arn:aws:s3:::a.b/*"}, "s3:GetObject", "arn:aws:s3:::aXb/k")


# ------------------------------------------------------------------------------------------- restart
FAILED = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:etl-workflow:run-1"


def restart_plan(execution: dict[str, Any] | None) -> dict[str, Any]:
    f = findings(message())
    if execution is not None:
        f["failedExecution"] = execution
    return ad.with_restart(plan(f), {"failedExecutionArn": FAILED}, f, "etl-workflow")


def test_a_failed_pipeline_run_is_offered_for_restart_as_a_second_action() -> None:
    sm = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:etl-workflow"
    result = restart_plan({"status": "FAILED", "name": "run-1", "stateMachineArn": sm})
    assert [a["id"] for a in result["actions"]] == ["add_identity_statement", "restart_failed_execution"]
    assert result["restart"] == {"stateMachineArn": sm, "name": "run-1-retry", "inputOf": FAILED}


@pytest.mark.parametrize(
    ("status", "machine"),
    [("RUNNING", "etl-workflow"), ("SUCCEEDED", "etl-workflow"), ("FAILED", "some-other-workflow")],
)
def test_only_finished_failed_runs_of_the_pipeline_are_restarted(status: str, machine: str) -> None:
    sm = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{machine}"
    result = restart_plan({"status": status, "name": "run-1", "stateMachineArn": sm})
    assert (result["restart"], [a["id"] for a in result["actions"]]) == (None, ["add_identity_statement"])
    assert "not restarted" in result["evidence"][-1]


def test_an_unreadable_execution_is_not_restarted() -> None:
    assert restart_plan(None)["restart"] is None


# ------------------------------------------------------------------------------------------- checking the grant
class Simulator:
    """IAM's SimulatePrincipalPolicy paginator answering the decisions given, one per check."""

    def __init__(self, *decisions: str) -> None:
        self.decisions = list(decisions)

    def get_paginator(self, name: str) -> Any:
        assert name == "simulate_principal_policy"
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"EvaluationResults": [{"EvalDecision": self.decisions.pop(0)}]}]


GRANT_CONFIG = {"verifyWaitSeconds": 10, "grantCheckPollSeconds": 30, "grantCheckDeadlineSeconds": 120}
IDENTITY_ACTION = {"id": "add_identity_statement"}
IDENTITY = {"role": {"arn": f"arn:aws:iam::{ACCOUNT}:role/lambda-execution-role"}, "denied": {"resource": "arn:aws:s3:::b/*"}}


def checks(*decisions: str) -> list[dict[str, Any]]:
    """The checks a run makes (as the state machine loops on `done`) while the simulator answers `decisions`."""
    simulator, attempt = Simulator(*decisions), 0
    results: list[dict[str, Any]] = []
    while not results or not results[-1]["done"]:
        results.append(ad.check_grant(simulator, None, IDENTITY_ACTION, {"action": "s3:PutObject"}, IDENTITY, attempt, GRANT_CONFIG))
        attempt = results[-1]["attempt"]
    return results


def test_the_grant_is_checked_again_until_it_shows() -> None:
    results = checks("implicitDeny", "implicitDeny", "allowed")
    assert [(r["attempt"], r["waitedSeconds"], r["allowed"], r["done"]) for r in results] == [
        (1, 10, False, False),
        (2, 40, False, False),
        (3, 70, True, True),
    ]
    assert results[-1]["summary"] is None


def test_a_grant_that_does_not_show_by_the_deadline_is_reported_not_yet_in_effect() -> None:
    results = checks(*["implicitDeny"] * 10)
    assert [r["waitedSeconds"] for r in results] == [10, 40, 70, 100, 130]
    assert results[-1]["summary"].startswith("The grant is not yet in effect after 130 s (5 checks with the IAM policy simulator)")


def test_an_explicit_deny_ends_the_checks_at_once() -> None:
    (result,) = checks("explicitDeny")
    assert (result["done"], result["allowed"]) == (True, False)
    assert "explicit deny" in result["summary"]
