"""The local account's fills for the access-denied playbook: the IAM policy simulator, CloudTrail, list parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from playbooks.local.account import LocalAccount
from playbooks.scenario import build_world

ROLE = "arn:aws:iam::123456789012:role/lambda-execution-role"
WORLD = {
    "roles": [
        {
            "name": "lambda-execution-role",
            "inlinePolicies": {
                "Reads": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "S3:Get*", "Resource": "arn:aws:s3:::raw-data-bucket/*"}],
                },
                "EverythingButAudit": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": "arn:aws:sqs:*:*:audit-?"}],
                },
                "OnlyOverTls": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sns:Publish",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                        }
                    ],
                },
            },
            "managedPolicies": {
                "GuardRails": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObjectAcl", "Resource": "*"}]},
            },
        }
    ],
    "cloudtrail": [
        {
            "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt",
            "role": "lambda-execution-role",
            "errorCode": "AccessDenied",
            "minutesAgo": 5,
        },
        {"eventSource": "kms.amazonaws.com", "eventName": "Encrypt", "role": "lambda-execution-role", "minutesAgo": 3},
    ],
}


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        build_world(local, WORLD, datetime.now(UTC))
        yield local


def decide(account: LocalAccount, action: str, resource: str) -> dict[str, Any]:
    result = account.client("iam").simulate_principal_policy(PolicySourceArn=ROLE, ActionNames=[action], ResourceArns=[resource])
    return dict(result["EvaluationResults"][0])


@pytest.mark.parametrize(
    ("action", "resource", "decision"),
    [
        ("s3:GetObject", "arn:aws:s3:::raw-data-bucket/in/a.csv", "allowed"),  # Action wildcard, case-insensitive
        ("s3:GetObject", "arn:aws:s3:::processed-data-bucket/a", "implicitDeny"),
        ("s3:PutObject", "arn:aws:s3:::raw-data-bucket/in/a.csv", "implicitDeny"),
        ("s3:GetObjectAcl", "arn:aws:s3:::raw-data-bucket/in/a.csv", "explicitDeny"),  # deny beats allow
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:etl-dlq", "allowed"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:audit-1", "implicitDeny"),  # NotResource with '?'
        ("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", "implicitDeny"),  # condition without context: does not apply
    ],
)
def test_simulator_evaluates_the_roles_policies(account: LocalAccount, action: str, resource: str, decision: str) -> None:
    assert decide(account, action, resource)["EvalDecision"] == decision


def test_simulator_names_the_deciding_statement_and_missing_context(account: LocalAccount) -> None:
    denied = decide(account, "s3:GetObjectAcl", "arn:aws:s3:::raw-data-bucket/x")
    assert denied["MatchedStatements"][0]["SourcePolicyId"] == "GuardRails"
    assert decide(account, "sns:Publish", "arn:aws:sns:us-east-1:123456789012:t")["MissingContextValues"] == ["aws:SecureTransport"]


def test_simulator_sees_a_policy_put_afterwards(account: LocalAccount) -> None:
    iam = account.client("iam")
    statement = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/etl-metadata"}
    iam.put_role_policy(
        RoleName="lambda-execution-role", PolicyName="fix", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    try:
        assert decide(account, "dynamodb:PutItem", statement["Resource"])["EvalDecision"] == "allowed"
    finally:
        iam.delete_role_policy(RoleName="lambda-execution-role", PolicyName="fix")
    assert decide(account, "dynamodb:PutItem", statement["Resource"])["EvalDecision"] == "implicitDeny"


def test_permissions_boundary_limits_what_policies_allow(account: LocalAccount) -> None:
    iam = account.client("iam")
    boundary = iam.create_policy(
        PolicyName="OnlyRawBucket",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::raw-data-bucket/*"}]}
        ),
    )["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="lambda-execution-role", PermissionsBoundary=boundary)
    try:
        assert decide(account, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:etl-dlq")["EvalDecision"] == "implicitDeny"
        assert decide(account, "s3:GetObject", "arn:aws:s3:::raw-data-bucket/a")["EvalDecision"] == "allowed"
    finally:
        iam.delete_role_permissions_boundary(RoleName="lambda-execution-role")


def test_cloudtrail_lookup_answers_from_the_scenario(account: LocalAccount) -> None:
    cloudtrail = account.client("cloudtrail")
    events = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}])["Events"]
    assert [e["EventName"] for e in events] == ["Decrypt"]
    assert json.loads(events[0]["CloudTrailEvent"])["errorCode"] == "AccessDenied"
    assert len(cloudtrail.lookup_events()["Events"]) == 2


def test_list_parameter_defaults_are_lists(account: LocalAccount) -> None:
    parse = next(f for f in account.functions.values() if f.logical_id == "AccessDeniedParseFunction")
    assert parse.environment["PROTECTED_ROLE_NAMES"] == "OrganizationAccountAccessRole"
