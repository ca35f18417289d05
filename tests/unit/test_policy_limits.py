"""The local account's IAM, KMS and SNS limits and IAM/KMS eventual consistency, as AWS documents them, and the
access-denied playbook's and the e-mails' answers to them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

import access_denied
from playbooks import project
from playbooks.local.account import LocalAccount
from playbooks.local.aws import iam, kms, sns
from playbooks.local.recorder import PRINCIPAL

mail: Any = project.import_function_module("shared.mail")
ROLE = "limits-pipeline-role"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        local.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
        yield local


def policy_of(characters: int) -> dict[str, Any]:
    """A policy of exactly `characters` characters as IAM counts them."""
    document: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}]}
    document["Statement"][0]["Resource"] = "arn:aws:s3:::b/" + "x" * (characters - iam.policy_characters(document) - len("arn:aws:s3:::b/"))
    assert iam.policy_characters(document) == characters
    return document


# IAM User Guide, IAM and AWS STS quotas: a role's inline policies together at most 10,240 characters, white space not
# counted; PutRolePolicy past it fails with LimitExceeded.
def test_a_roles_inline_policies_share_10240_characters(account: LocalAccount) -> None:
    client = account.client("iam")
    client.put_role_policy(RoleName=ROLE, PolicyName="first", PolicyDocument=json.dumps(policy_of(6000), indent=4))
    # WHEN a second policy brings the total to exactly the quota, then one character past it
    client.put_role_policy(RoleName=ROLE, PolicyName="second", PolicyDocument=json.dumps(policy_of(4240)))
    with pytest.raises(ClientError) as refused:
        client.put_role_policy(RoleName=ROLE, PolicyName="second", PolicyDocument=json.dumps(policy_of(4241)))
    # THEN white space (the first policy's indentation) does not count, and IAM's own error refuses the excess
    assert refused.value.response["Error"]["Code"] == "LimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert f"Maximum policy size of 10240 bytes exceeded for role {ROLE}" in refused.value.response["Error"]["Message"]
    assert iam.policy_characters(client.get_role_policy(RoleName=ROLE, PolicyName="second")["PolicyDocument"]) == 4240
    client.delete_role_policy(RoleName=ROLE, PolicyName="first")
    client.delete_role_policy(RoleName=ROLE, PolicyName="second")


# AWS KMS Developer Guide, Key policy format: at most 32 KB (32,768 bytes); LimitExceededException past it.
def test_a_key_policy_is_at_most_32768_bytes(account: LocalAccount) -> None:
    client = account.client("kms")
    root = {
        "Sid": "Root",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account.account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    key = client.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [root]}))["KeyMetadata"]["KeyId"]
    padding = {"Version": "2012-10-17", "Statement": [root | {"Sid": ""}]}
    text = json.dumps(padding)
    fits = json.dumps(padding | {"Statement": [root | {"Sid": "x" * (32768 - len(text))}]})
    assert len(fits.encode()) == 32768
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=fits)
    with pytest.raises(ClientError) as refused:
        client.put_key_policy(KeyId=key, PolicyName="default", Policy=fits.replace('"Sid": "x', '"Sid": "xx'))
    assert refused.value.response["Error"]["Code"] == "LimitExceededException"


# Amazon SNS API Reference, Publish: Subject (ASCII, begins with a letter, number or punctuation mark, no line breaks or
# control characters, under 100 characters): InvalidParameter otherwise.
@pytest.mark.parametrize(
    "subject", ["[failed] access-denied \x1b[31mERROR", "nul\x00", "two\nlines", " leading space", "x" * 100, "caf\u00e9", ""]
)
def test_sns_refuses_a_subject_aws_refuses(account: LocalAccount, subject: str) -> None:
    topic = account.client("sns").create_topic(Name="limits-topic")["TopicArn"]
    with pytest.raises(ClientError) as refused:
        account.client("sns").publish(TopicArn=topic, Subject=subject, Message="body")
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    account.client("sns").publish(TopicArn=topic, Subject=mail.subject(subject), Message="body")


@given(st.text())
def test_every_email_subject_is_one_sns_accepts(text: str) -> None:
    assert sns.subject_problem(mail.subject(text)) is None


# IAM User Guide, "Changes that I make are not always immediately visible"; AWS KMS eventual consistency.
def test_a_policy_change_governs_authorization_only_once_it_has_propagated(account: LocalAccount) -> None:
    from moto.iam.models import iam_backends

    client = account.client("iam")
    role = iam_backends[account.account_id]["aws"].get_role(ROLE)
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}]}
    # WHEN someone other than the world building writes a grant
    token = PRINCIPAL.set("an-administrator-after-deployment")
    try:
        client.put_role_policy(RoleName=ROLE, PolicyName="grant", PolicyDocument=json.dumps(grant))
    finally:
        PRINCIPAL.reset(token)
    # THEN it reads back at once (GetRolePolicy, the simulator) but governs authorization only once it has propagated
    assert client.get_role_policy(RoleName=ROLE, PolicyName="grant")["PolicyDocument"] == grant
    simulated = client.simulate_principal_policy(PolicySourceArn=role.arn, ActionNames=["dynamodb:PutItem"])["EvaluationResults"]
    assert simulated[0]["EvalDecision"] == "allowed"
    assert iam.inline_policies_in_effect(role) == []
    account.clock.advance(account.settings.iam_propagation_s)
    assert [json.loads(text) if isinstance(text, str) else text for text in iam.inline_policies_in_effect(role)] == [grant]
    client.delete_role_policy(RoleName=ROLE, PolicyName="grant")


def test_the_simulator_can_show_a_change_late_and_authorization_later_still(account: LocalAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iam.models import iam_backends

    # GIVEN an account whose simulator shows a policy change after 120 s and whose authorization honours it after 180 s
    monkeypatch.setattr(account.settings, "iam_simulator_delay_s", 120.0)
    monkeypatch.setattr(account.settings, "iam_propagation_s", 180.0)
    client = account.client("iam")
    role = iam_backends[account.account_id]["aws"].get_role(ROLE)
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}

    def simulated() -> str:
        results = client.simulate_principal_policy(PolicySourceArn=role.arn, ActionNames=["dynamodb:GetItem"])["EvaluationResults"]
        return str(results[0]["EvalDecision"])

    # WHEN someone other than the world building writes a grant
    token = PRINCIPAL.set("an-administrator-after-deployment")
    try:
        client.put_role_policy(RoleName=ROLE, PolicyName="late", PolicyDocument=json.dumps(grant))
    finally:
        PRINCIPAL.reset(token)
    # THEN it reads back at once, the simulator shows it only after 120 s, and it governs authorization after 180 s
    assert client.get_role_policy(RoleName=ROLE, PolicyName="late")["PolicyDocument"] == grant
    assert simulated() == "implicitDeny"
    account.clock.advance(119)
    assert simulated() == "implicitDeny"
    account.clock.advance(1)
    assert (simulated(), iam.inline_policies_in_effect(role)) == ("allowed", [])
    account.clock.advance(60)
    assert [json.loads(text) if isinstance(text, str) else text for text in iam.inline_policies_in_effect(role)] == [grant]
    client.delete_role_policy(RoleName=ROLE, PolicyName="late")
    account.clock.advance(180)


def test_a_key_policy_change_governs_authorization_only_once_it_has_propagated(account: LocalAccount) -> None:
    client = account.client("kms")
    before = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
    }
    after = {
        "Version": "2012-10-17",
        "Statement": [
            *before["Statement"],
            {"Sid": "New", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    key_id = client.create_key(Policy=json.dumps(before))["KeyMetadata"]["KeyId"]
    token = PRINCIPAL.set("an-administrator-after-deployment")
    try:
        client.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(after), BypassPolicyLockoutSafetyCheck=True)
    finally:
        PRINCIPAL.reset(token)
    from moto.kms.models import kms_backends

    key = kms_backends[account.account_id][account.region].keys[key_id]
    assert json.loads(client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == after
    assert json.loads(kms.policy_in_effect(key)) == before
    account.clock.advance(kms.KEY_POLICY_PROPAGATION_S)
    assert json.loads(kms.policy_in_effect(key)) == after


# The playbook's side: the size is computed before asking, and a statement already there is never appended again.
def test_the_plan_counts_every_inline_policy_of_the_role() -> None:
    statement = access_denied.identity_statement("s3:PutObject", "arn:aws:s3:::processed-data-bucket/out/a.parquet")
    fix = {"Version": "2012-10-17", "Statement": [statement]}
    room = access_denied.ROLE_INLINE_POLICY_QUOTA - access_denied.policy_characters(fix)
    role = {"name": "r", "inline": [{"name": "other", "document": policy_of(room)}], "fixPolicy": None}
    assert access_denied.inline_quota_problem(role, access_denied.add_identity_statement(role, statement, "fix")) is None
    role["inline"] = [{"name": "other", "document": policy_of(room + 1)}]
    problem = access_denied.inline_quota_problem(role, access_denied.add_identity_statement(role, statement, "fix"))
    assert problem is not None and "10241 characters" in problem


def test_a_statement_already_present_is_not_appended_again() -> None:
    statement = access_denied.identity_statement("s3:PutObject", "arn:aws:s3:::processed-data-bucket/*")
    present = {"Version": "2012-10-17", "Statement": [statement]}
    role = {"name": "r", "inline": [{"name": "fix", "document": present}], "fixPolicy": present}
    assert access_denied.add_identity_statement(role, statement, "fix")["after"]["document"] == present
    key_statement = access_denied.key_statement("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k", "arn:aws:iam::1:role/r")
    key_policy = {"Version": "2012-10-17", "Statement": [key_statement]}
    assert access_denied.add_key_statement("arn:aws:kms:us-east-1:1:key/k", key_policy, key_statement)["after"]["document"] == key_policy
