"""access-denied's plan: the one least statement it would write (and where), the key-policy decision, what it refuses and
escalates, and the before-state each write's rollback restores. Every case is checked whole: its case and disposition
(the state machine's Choice reads them), the actions the approval covers, and what the approver reads.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_access_denied_logic import (
    ACCOUNT,
    ADMIN,
    KEY,
    KEY_POLICY_CHANGES_BY_IAM,
    ROLE_ARN,
    S3_OBJECT,
    SESSION,
    SETTINGS,
    findings,
    message,
    plan,
)

import access_denied as ad
from shared.errors import PlaybookError

BUCKET_OBJECTS = "arn:aws:s3:::processed-data-bucket/*"
DENIED = f"Denied: {SESSION} calling s3:PutObject on {S3_OBJECT}; reason: no-identity-allow."
ROLE = f"Role {ROLE_ARN}: inline policies none, attached policies none."
TRAIL = "Denied calls of this role in CloudTrail: none (S3 and DynamoDB item calls are data events, not in the event history)."
SIMULATED = f"IAM policy simulator for s3:PutObject on {S3_OBJECT}: implicitDeny."
PUT_OBJECT = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": BUCKET_OBJECTS}
RECOMMENDATIONS = ad.RECOMMENDATIONS


def dumped(document: Any) -> str:
    return json.dumps(document, sort_keys=True)


# ------------------------------------------------------------------------------------------------ the identity fix
def test_a_missing_permission_is_one_statement_in_the_playbooks_own_new_policy() -> None:
    result = plan(findings(message()))
    assert result == {
        "case": "missing-identity-permission",
        "disposition": "remediate",
        "summary": f"No identity policy of lambda-execution-role allows s3:PutObject on {S3_OBJECT}: add exactly that permission "
        "to the playbook's own inline policy etl-playbooks-access-fix (no other policy is touched).",
        "actions": [
            {
                "id": "add_identity_statement",
                "api": "iam:PutRolePolicy",
                "target": "lambda-execution-role",
                "description": f"Allow s3:PutObject on {BUCKET_OBJECTS} in the inline policy etl-playbooks-access-fix of role lambda-execution-role.",
                "before": {"policyName": "etl-playbooks-access-fix", "document": None},
                "after": {"policyName": "etl-playbooks-access-fix", "document": {"Version": "2012-10-17", "Statement": [PUT_OBJECT]}},
                "statement": PUT_OBJECT,
                # the policy did not exist: undoing the fix deletes it
                "rollback": {
                    "api": "iam:DeleteRolePolicy",
                    "parameters": {"RoleName": "lambda-execution-role", "PolicyName": "etl-playbooks-access-fix"},
                },
            }
        ],
        "evidence": [DENIED, ROLE, TRAIL, SIMULATED, f"Statement to add: {dumped(PUT_OBJECT)}"],
        "recommendations": RECOMMENDATIONS,
        "restart": None,
    }


def test_an_existing_fix_policy_is_extended_and_restored_whole_on_rollback() -> None:
    earlier = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::raw-data-bucket/*"}
    before = {"Version": "2012-10-17", "Statement": [earlier]}
    (action,) = plan(findings(message(), fix_policy=before))["actions"]
    assert action["before"] == {"policyName": "etl-playbooks-access-fix", "document": before}
    assert action["after"]["document"] == {"Version": "2012-10-17", "Statement": [earlier, PUT_OBJECT]}
    assert action["rollback"] == {
        "api": "iam:PutRolePolicy",
        "parameters": {"RoleName": "lambda-execution-role", "PolicyName": "etl-playbooks-access-fix", "PolicyDocument": dumped(before)},
    }
    assert before == {"Version": "2012-10-17", "Statement": [earlier]}  # the recorded before-state is not the written one


def test_a_statement_already_in_the_policy_is_never_written_twice() -> None:
    present = {"Version": "2012-10-17", "Statement": [PUT_OBJECT]}
    role = {"name": "lambda-execution-role", "fixPolicy": present}
    assert ad.add_identity_statement(role, PUT_OBJECT, "etl-playbooks-access-fix")["after"]["document"] == present
    key_policy = {"Statement": [ADMIN, DECRYPT]}
    assert ad.add_key_statement(KEY, dumped(key_policy), DECRYPT)["after"]["document"] == key_policy


def test_the_evidence_names_the_roles_policies_and_cloudtrails_denied_calls() -> None:
    f = findings(message())
    role = f["identity"]["role"]
    # read_role's shape: every policy with its document (the inline ones' sizes are checked against IAM's quota)
    base = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}
    read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    role |= {
        "inline": [{"name": "base", "document": base}],
        "attached": [{"name": "ReadOnly", "arn": "arn:aws:iam::aws:policy/ReadOnly", "document": read_only}],
        "permissionsBoundary": "arn:aws:iam::1:policy/b",
    }
    f["identity"]["cloudtrail"]["denied"] = [
        {"time": "t1", "eventName": "PutObject", "errorCode": "AccessDenied", "resources": ["arn:aws:s3:::b/k", "arn:aws:s3:::b"]},
        {"time": "t2", "eventName": "ListBucket", "errorCode": "AccessDenied", "resources": []},
    ]
    evidence = plan(f)["evidence"]
    assert (
        evidence[1]
        == f"Role {ROLE_ARN}: inline policies ['base'], attached policies ['ReadOnly'], permissions boundary arn:aws:iam::1:policy/b."
    )
    assert (
        evidence[2]
        == "Denied calls of this role in CloudTrail: t1 PutObject AccessDenied arn:aws:s3:::b/k, arn:aws:s3:::b; t2 ListBucket AccessDenied"
    )
    f["identity"]["cloudtrail"] = {"available": False, "denied": []}
    assert plan(f)["evidence"][2] == "CloudTrail event history could not be read; diagnosed from the message and the policies alone."


def test_a_resource_found_in_cloudtrail_is_said_to_come_from_there() -> None:
    f = findings(message())
    f["identity"]["denied"]["resourceFrom"] = "cloudtrail"
    assert f"The resource comes from CloudTrail: {S3_OBJECT}." in plan(f)["evidence"]
    assert not any(line.startswith("The resource comes from") for line in plan(findings(message()))["evidence"])


def test_an_unknown_resource_is_escalated_never_granted_on_star() -> None:
    f = findings(message())
    f["identity"]["denied"] = {"action": "s3:PutObject", "resourceKnown": False}
    result = plan(f)
    assert (result["case"], result["disposition"], result["actions"]) == ("resource-unknown", "escalate", [])
    assert result["summary"] == (
        "lambda-execution-role was denied s3:PutObject, but neither the message nor CloudTrail names the resource; "
        'the playbook never grants on Resource "*". Find the resource and run the playbook with the full message.'
    )
    assert result["evidence"] == [DENIED, ROLE, TRAIL]
    assert result["recommendations"] == RECOMMENDATIONS


def test_a_message_without_a_resource_says_so() -> None:
    f = findings(message())
    del f["parsed"]["resource"]
    assert (
        plan(f)["evidence"][0] == f"Denied: {SESSION} calling s3:PutObject (no resource named in the message); reason: no-identity-allow."
    )


def test_a_resource_of_another_account_is_refused_with_its_owner() -> None:
    f = findings(message())
    other = "arn:aws:sqs:us-east-1:999999999999:queue"
    f["identity"]["denied"]["resource"] = other
    result = plan(f)
    assert (result["case"], result["disposition"], result["actions"]) == ("refused", "escalate", [])
    assert result["summary"] == (
        f"The playbook will not change anything: {other} belongs to account 999999999999; cross-account access needs that "
        "account's resource policy too, which a person has to arrange."
    )
    assert result["evidence"] == [DENIED, ROLE, TRAIL]


def test_an_s3_arn_without_an_account_is_the_principals_own() -> None:
    assert plan(findings(message()))["case"] == "missing-identity-permission"  # arn:aws:s3:::bucket/key has no account field


def test_a_refused_principal_is_escalated_before_the_role_is_read() -> None:
    result = plan({"parsed": ad.read_message(message(principal=f"arn:aws:iam::{ACCOUNT}:user/alice"), ACCOUNT, SETTINGS, "t")})
    assert (result["case"], result["disposition"], result["actions"]) == ("refused", "escalate", [])
    assert result["summary"].startswith(
        f"The playbook will not change anything: the denied principal arn:aws:iam::{ACCOUNT}:user/alice is not a role"
    )
    assert result["evidence"] == [
        f"Denied: arn:aws:iam::{ACCOUNT}:user/alice calling s3:PutObject on {S3_OBJECT}; reason: no-identity-allow."
    ]


def test_unreadable_and_absent_messages_are_no_action_with_the_variants_read() -> None:
    variants = "Messages the playbook reads: " + "; ".join(ad.denied_message.VARIANTS) + "."
    unreadable = plan({"parsed": ad.read_message("Access Denied", ACCOUNT, SETTINGS, "t")})
    assert unreadable["evidence"] == ["Message: Access Denied", variants]
    assert unreadable["summary"].startswith("Nothing to fix: the message cannot be read: ")
    assert unreadable["summary"].endswith(". Nothing was changed.")
    assert unreadable["recommendations"] == []
    absent = plan({"parsed": ad.read_message(None, ACCOUNT, SETTINGS, "t")})
    assert absent == {
        "case": "no-denied-line",
        "disposition": "no-action",
        "summary": "Nothing to fix: no access-denied line was found in the pipeline's logs. Nothing was changed.",
        "actions": [],
        "evidence": [variants],
        "recommendations": [],
        "restart": None,
    }


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("with an explicit deny in a service control policy", "a service control policy of the organization"),
        ("because no permissions boundary allows the s3:PutObject action", "the role's permissions boundary"),
    ],
)
def test_denials_outside_identity_policies_name_the_policy_that_denies(reason: str, why: str) -> None:
    result = plan(findings(message(reason=reason)))
    assert (result["case"], result["disposition"], result["actions"]) == ("denied-outside-identity-policies", "escalate", [])
    assert result["summary"] == (
        f"s3:PutObject on {S3_OBJECT} is denied by {why}; adding an allow statement cannot fix that. A person has to review that policy."
    )
    assert result["evidence"][1:] == [ROLE, TRAIL]


def test_an_explicit_identity_deny_names_its_policies() -> None:
    result = plan(findings(message(), "explicitDeny", matched=[{"SourcePolicyId": "GuardRails"}, {"SourcePolicyId": "Freeze"}]))
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-identity-policy", "escalate", [])
    assert result["summary"] == (
        f"GuardRails, Freeze of lambda-execution-role explicitly denies s3:PutObject on {S3_OBJECT}; the playbook never changes a deny."
    )
    assert result["evidence"][-1] == f"IAM policy simulator for s3:PutObject on {S3_OBJECT}: explicitDeny."
    unnamed = plan(findings(message(), "explicitDeny"))
    assert unnamed["summary"].startswith("an identity policy of lambda-execution-role explicitly denies")


def test_already_allowed_is_no_action_without_recommendations() -> None:
    result = plan(findings(message(), "allowed"))
    assert result == {
        "case": "already-allowed",
        "disposition": "no-action",
        "summary": f"The policy simulator allows lambda-execution-role s3:PutObject on {S3_OBJECT} now (fixed since the error?); nothing to change.",
        "actions": [],
        "evidence": [DENIED, ROLE, TRAIL, f"IAM policy simulator for s3:PutObject on {S3_OBJECT}: allowed."],
        "recommendations": [],
        "restart": None,
    }


def test_without_a_simulation_the_statement_is_still_the_least_one() -> None:
    f = findings(message())
    f["simulation"] = {"results": []}
    result = plan(f)
    assert result["case"] == "missing-identity-permission"
    assert not any(line.startswith("IAM policy simulator") for line in result["evidence"])


def test_a_statement_already_present_yet_denied_is_escalated_not_added_again() -> None:
    present = {"Version": "2012-10-17", "Statement": [PUT_OBJECT]}
    result = plan(findings(message(), fix_policy=present))
    assert (result["case"], result["disposition"], result["actions"]) == ("statement-present-but-denied", "escalate", [])
    assert result["summary"] == (
        f"The playbook's policy etl-playbooks-access-fix already allows s3:PutObject on {BUCKET_OBJECTS}, yet the simulator "
        "denies it: something else (a boundary or an organization policy) limits the role. A person has to look."
    )
    assert result["evidence"] == [DENIED, ROLE, TRAIL, SIMULATED]


# ------------------------------------------------------------------------------------------------ resource policies
FREEZE = {
    "Sid": "Freeze",
    "Effect": "Deny",
    "Principal": {"AWS": ROLE_ARN},
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::processed-data-bucket/out/*",
}
TLS = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": BUCKET_OBJECTS,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize(
    "deny", [FREEZE, FREEZE | {"Principal": {"AWS": ACCOUNT}}, FREEZE | {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]
)
def test_an_explicit_deny_in_the_bucket_policy_is_quoted_and_escalated(deny: dict[str, Any]) -> None:
    result = plan(
        findings(message(reason="with an explicit deny in a resource-based policy"), "allowed", resource_policy={"Statement": [deny]})
    )
    quoted = dumped(deny)
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-resource-policy", "escalate", [])
    assert result["summary"] == (
        f"The bucket policy of processed-data-bucket explicitly denies s3:PutObject on {S3_OBJECT} to lambda-execution-role; "
        f"the playbook never changes a deny. Offending statement: {quoted}"
    )
    assert result["evidence"][-1] == f"Offending statement in the bucket policy of processed-data-bucket: {quoted}"


def test_a_deny_for_another_principal_does_not_block_the_fix() -> None:
    other = FREEZE | {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/someone-else"}}
    assert plan(findings(message(), resource_policy={"Statement": [other]}))["case"] == "missing-identity-permission"


def test_a_conditional_deny_is_shown_but_does_not_block_the_fix() -> None:
    result = plan(findings(message(), resource_policy={"Statement": [TLS]}))
    assert result["case"] == "missing-identity-permission"
    assert f"Conditional deny statements that may apply: {dumped(TLS)}" in result["evidence"]


def test_an_unconditional_deny_beside_a_conditional_one_still_blocks_the_fix() -> None:
    # the conditional deny is set aside as "may apply"; the unconditional one for the role still denies
    result = plan(findings(message(), resource_policy={"Statement": [TLS, FREEZE]}))
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-resource-policy", "escalate", [])
    assert result["summary"].endswith(f"Offending statement: {dumped(FREEZE)}")
    assert f"Conditional deny statements that may apply: {dumped(TLS)}" in result["evidence"]


def test_every_deny_that_applies_is_quoted_for_the_approver() -> None:
    tls_for_uploads = TLS | {"Action": "s3:PutObject"}
    frozen_for_the_role = FREEZE | {"Sid": "FreezeRole", "Principal": {"AWS": ROLE_ARN}}
    frozen_for_the_account = FREEZE | {"Sid": "FreezeAccount", "Principal": {"AWS": ACCOUNT}}
    statements = [TLS, tls_for_uploads, frozen_for_the_role, frozen_for_the_account]
    result = plan(findings(message(), resource_policy={"Statement": statements}))
    assert f"Conditional deny statements that may apply: {dumped(TLS)}; {dumped(tls_for_uploads)}" in result["evidence"]
    quoted = f"{dumped(frozen_for_the_role)}; {dumped(frozen_for_the_account)}"
    assert result["summary"].endswith(f"Offending statement: {quoted}")
    assert result["evidence"][-1] == f"Offending statement in the bucket policy of processed-data-bucket: {quoted}"


def test_a_conditional_deny_the_message_blames_is_escalated() -> None:
    result = plan(findings(message(reason="with an explicit deny in a resource-based policy"), resource_policy={"Statement": [TLS]}))
    assert (result["case"], result["actions"]) == ("explicit-deny-in-resource-policy", [])
    assert dumped(TLS) in result["summary"]


def test_a_resource_deny_the_playbook_cannot_find_is_escalated() -> None:
    result = plan(findings(message(reason="with an explicit deny in a resource-based policy"), resource_policy={"Statement": []}))
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-resource-policy", "escalate", [])
    assert result["summary"] == (
        f"The message reports an explicit deny in a resource-based policy for s3:PutObject on {S3_OBJECT}, but the playbook "
        "could not find it in the policy it can read. A person has to review the resource's policies."
    )
    assert result["evidence"][1:] == [ROLE, TRAIL]


def test_an_unreadable_resource_policy_is_in_the_evidence() -> None:
    f = findings(message())
    f["resourcePolicyError"] = {"Error": "S3.AccessDenied", "Cause": "x" * 400}
    assert f"The resource policy could not be read: {'x' * 300}" in plan(f)["evidence"]


# ------------------------------------------------------------------------------------------------ the key-policy decision
DECRYPT = {
    "Sid": "EtlPlaybooksAccessFixLambdaExecutionRoleDecrypt",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE_ARN},
    "Action": "kms:Decrypt",
    "Resource": KEY,
}
DENIED_DECRYPT = f"Denied: {SESSION} calling kms:Decrypt on {KEY}; reason: no-resource-allow."


def key_plan(key_policy: dict[str, Any], decision: str = "allowed") -> dict[str, Any]:
    return plan(
        findings(
            message("kms:Decrypt", KEY, reason="because no resource-based policy allows the kms:Decrypt action"),
            decision,
            resource_policy=key_policy,
        )
    )


def test_a_key_policy_without_the_role_gets_one_statement_for_that_role_and_action() -> None:
    key_policy = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM]}
    result = key_plan(key_policy)
    after = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, DECRYPT]}
    assert result == {
        "case": "missing-kms-grant",
        "disposition": "remediate",
        "summary": f"The key policy of {KEY} does not let lambda-execution-role use kms:Decrypt: add one statement for that role and action.",
        "actions": [
            {
                "id": "add_key_policy_statement",
                "api": "kms:PutKeyPolicy",
                "target": KEY,
                "description": f"Allow role lambda-execution-role kms:Decrypt in the key policy of {KEY}.",
                "before": {"policyName": "default", "document": key_policy},
                "after": {"policyName": "default", "document": after},
                "statement": DECRYPT,
                "rollback": {
                    "api": "kms:PutKeyPolicy",
                    "parameters": {"KeyId": KEY, "PolicyName": "default", "Policy": dumped(key_policy)},
                },
            }
        ],
        "evidence": [
            DENIED_DECRYPT,
            ROLE,
            TRAIL,
            f"IAM policy simulator for kms:Decrypt on {KEY}: allowed.",
            f"Key policy of {KEY}: neither allows the role nor delegates to IAM policies.",
            f"Statement to add to the key policy: {dumped(DECRYPT)}",
        ],
        "recommendations": RECOMMENDATIONS,
        "restart": None,
    }


def test_a_key_policy_that_allows_the_role_is_already_allowed() -> None:
    result = key_plan({"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, DECRYPT]}, "implicitDeny")
    assert (result["case"], result["disposition"], result["actions"]) == ("already-allowed", "no-action", [])
    assert result["summary"] == f"lambda-execution-role is allowed kms:Decrypt on {KEY} now; nothing to change."
    assert f"Key policy of {KEY}: allows the role." in result["evidence"]


def test_a_conditional_allow_for_the_role_is_not_taken_as_a_grant() -> None:
    conditional = DECRYPT | {"Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}
    result = key_plan({"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, conditional]}, "implicitDeny")
    assert result["case"] == "missing-kms-grant"


def test_a_key_policy_delegating_to_iam_is_fixed_in_the_identity_policy() -> None:
    delegating = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    result = key_plan({"Statement": [delegating]}, "implicitDeny")
    assert result["case"] == "missing-identity-permission"
    assert result["actions"][0]["statement"] == {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}
    assert f"Key policy of {KEY}: delegates to IAM policies." in result["evidence"]
    assert key_plan({"Statement": [delegating]}, "allowed")["case"] == "already-allowed"


def test_an_explicit_deny_in_the_key_policy_is_quoted_and_escalated() -> None:
    deny = {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": ROLE_ARN}, "Action": "kms:Decrypt", "Resource": "*"}
    result = key_plan({"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, DECRYPT, deny]})
    assert (result["case"], result["disposition"], result["actions"]) == ("explicit-deny-in-resource-policy", "escalate", [])
    assert result["summary"] == (
        f"The key policy of {KEY} explicitly denies kms:Decrypt on {KEY} to lambda-execution-role; the playbook never changes "
        f"a deny. Offending statement: {dumped(deny)}"
    )
    assert result["evidence"][-1] == f"Offending statement in the key policy of {KEY}: {dumped(deny)}"


def test_a_key_delegating_to_iam_that_the_simulator_allows_is_already_allowed_on_the_key() -> None:
    delegating = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    result = key_plan({"Statement": [delegating]}, "allowed")
    assert (result["case"], result["disposition"], result["actions"]) == ("already-allowed", "no-action", [])
    assert result["summary"] == f"lambda-execution-role is allowed kms:Decrypt on {KEY} now; nothing to change."


def test_a_key_policy_the_playbook_cannot_change_is_escalated_with_both_statements() -> None:
    key_policy = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM | {"Action": "kms:GetKeyPolicy"}]}
    result = key_plan(key_policy)
    enabling = dumped(ad.enable_iam_statement(ACCOUNT))
    assert (result["case"], result["disposition"], result["actions"]) == ("key-policy-not-delegated", "escalate", [])
    assert result["summary"] == (
        f"The key policy of {KEY} does not enable IAM policies for kms:GetKeyPolicy and kms:PutKeyPolicy, so the playbook's "
        f"roles cannot change it. Nothing was changed. A key administrator should add this statement to the key policy of {KEY}: "
        f"{dumped(DECRYPT)}. To let this playbook make such changes itself after approval, the key policy must also enable IAM "
        f"policies for reading and changing it: {enabling}"
    )
    assert result["evidence"][-1] == f"Statement for a key administrator to add to the key policy of {KEY}: {dumped(DECRYPT)}"
    assert result["recommendations"] == RECOMMENDATIONS


def test_a_key_policy_kms_refuses_to_show_is_escalated_with_kmss_cause() -> None:
    f = findings(message("kms:Decrypt", KEY), "allowed")
    f["keyPolicyError"] = {"Error": "Kms.AccessDeniedException", "Cause": "c" * 400}
    result = plan(f)
    assert (result["case"], result["disposition"], result["actions"]) == ("key-policy-unreadable", "escalate", [])
    assert result["summary"] == (
        f"The playbook may not read the key policy of {KEY} (KMS: {'c' * 300}). Nothing was changed. A key administrator should "
        f"add this statement to the key policy of {KEY}: {dumped(DECRYPT)}. To let this playbook make such changes itself after "
        f"approval, the key policy must also enable IAM policies for reading and changing it: {dumped(ad.enable_iam_statement(ACCOUNT))}"
    )


def test_a_key_statement_that_would_take_the_policy_past_kmss_size_limit_is_escalated() -> None:
    # GIVEN a key policy 20 bytes under KMS's 32 KB limit (a long condition list): one more statement cannot fit
    readers = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reporting"}, "Action": "kms:Decrypt", "Resource": "*"}
    key_policy = {
        "Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, readers | {"Condition": {"StringEquals": {"kms:EncryptionContext:job": ""}}}]
    }
    padding = 32768 - 20 - len(dumped(key_policy).encode())
    key_policy["Statement"][2]["Condition"]["StringEquals"]["kms:EncryptionContext:job"] = "j" * padding
    result = key_plan(key_policy)
    size = len(dumped({"Statement": [*key_policy["Statement"], DECRYPT]}).encode())
    assert (result["case"], result["disposition"], result["actions"]) == ("key-policy-too-large", "escalate", [])
    assert result["summary"] == (
        f"The playbook will not ask for a change that cannot be applied: the key policy of {KEY} would be {size} bytes, over "
        "KMS's limit of 32768 bytes, so PutKeyPolicy would fail with LimitExceededException. Nothing was changed. A key "
        f"administrator should make room in the key policy of {KEY} (merge statements, or give the role a KMS grant instead) "
        f"and add this statement: {dumped(DECRYPT)}"
    )
    assert result["evidence"][-1] == f"Statement for a key administrator to add to the key policy of {KEY}: {dumped(DECRYPT)}"
    assert result["recommendations"] == RECOMMENDATIONS


def test_a_statement_that_would_take_the_roles_inline_policies_past_iams_quota_is_escalated() -> None:
    # GIVEN inline policies 20 characters under IAM's 10,240 (white space not counted): the fix policy cannot fit
    f = findings(message())
    reads: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}
    base = {"Version": "2012-10-17", "Statement": [reads]}
    compact = len(json.dumps(base, separators=(",", ":")))
    reads["Resource"] = "arn:aws:s3:::raw-data-bucket/" + "k" * (10240 - 20 - compact - len("arn:aws:s3:::raw-data-bucket/"))
    f["identity"]["role"]["inline"] = [{"name": "base", "document": base}]
    result = plan(f)
    fix = {"Version": "2012-10-17", "Statement": [PUT_OBJECT]}
    total = 10240 - 20 + len(json.dumps(fix, separators=(",", ":")))
    assert (result["case"], result["disposition"], result["actions"]) == ("inline-policy-quota", "escalate", [])
    assert result["summary"] == (
        "The playbook will not ask for a change that cannot be applied: the inline policies of role lambda-execution-role "
        f"would hold {total} characters (white space not counted), over IAM's quota of 10240 for all of a role's inline "
        "policies together, so PutRolePolicy would fail with LimitExceeded. Nothing was changed. A person should grant this "
        "statement to lambda-execution-role in a customer managed policy (managed policies have their own size quota) or "
        f"make room in its inline policies: {dumped(PUT_OBJECT)}"
    )
    assert result["evidence"][-1] == f"Statement for a person to grant to lambda-execution-role: {dumped(PUT_OBJECT)}"
    assert result["recommendations"] == RECOMMENDATIONS


def test_the_playbooks_own_key_policy_statement_enables_iam_for_reading_and_changing_it() -> None:
    assert ad.enable_iam_statement(ACCOUNT) == {
        "Sid": "EnableIamPoliciesForKeyPolicyChanges",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy"],
        "Resource": "*",
    }


@pytest.mark.parametrize(
    ("statement", "grant"),
    [
        (DECRYPT, "direct"),
        (DECRYPT | {"Principal": {"AWS": SESSION}}, "direct"),
        (DECRYPT | {"Principal": "*"}, "direct"),
        (DECRYPT | {"Principal": {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-execution-role/*"}}, "direct"),
        (DECRYPT | {"Principal": {"AWS": ACCOUNT}}, "account"),
        (DECRYPT | {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, "account"),
        (DECRYPT | {"Principal": {"AWS": "arn:aws:iam::999999999999:root"}}, None),
        (DECRYPT | {"Action": "kms:Encrypt"}, None),
        (DECRYPT | {"Effect": "Deny"}, None),
        (DECRYPT | {"Principal": {"Service": "s3.amazonaws.com"}}, None),
    ],
)
def test_the_key_policy_grant_is_direct_for_the_role_account_for_delegation(statement: dict[str, Any], grant: str | None) -> None:
    document = json.dumps({"Statement": [statement]})
    assert ad.key_policy_grant(document, "kms:Decrypt", KEY, ROLE_ARN, SESSION, ACCOUNT) == grant


def test_enabling_iam_policies_needs_an_allow_for_the_account_and_the_action() -> None:
    assert ad.enables_iam_policies({"Statement": [KEY_POLICY_CHANGES_BY_IAM]}, "kms:PutKeyPolicy", KEY, ACCOUNT)
    assert not ad.enables_iam_policies({"Statement": [KEY_POLICY_CHANGES_BY_IAM | {"Effect": "Deny"}]}, "kms:PutKeyPolicy", KEY, ACCOUNT)
    assert not ad.enables_iam_policies({"Statement": [KEY_POLICY_CHANGES_BY_IAM]}, "kms:Decrypt", KEY, ACCOUNT)
    assert not ad.enables_iam_policies({"Statement": [ADMIN]}, "kms:PutKeyPolicy", KEY, ACCOUNT)


@pytest.mark.parametrize(
    ("statement", "denies"),
    [
        (FREEZE, True),
        (FREEZE | {"Principal": {"AWS": SESSION}}, True),
        (FREEZE | {"Principal": "*"}, True),
        (FREEZE | {"Principal": {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-execution-role/*"}}, True),
        (FREEZE | {"Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}}, True),
        (FREEZE | {"Principal": {"AWS": "arn:aws:iam::999999999999:root"}}, False),
        (FREEZE | {"Principal": {"AWS": "*"}}, True),
        (FREEZE | {"Principal": {"Service": "*"}}, False),
        (FREEZE | {"Effect": "Allow"}, False),
        (FREEZE | {"Action": "s3:GetObject"}, False),
    ],
)
def test_a_resource_policy_deny_takes_in_the_role_its_session_everyone_or_the_account(statement: dict[str, Any], denies: bool) -> None:
    found = ad.resource_policy_denies({"Statement": [statement]}, "s3:PutObject", S3_OBJECT, ROLE_ARN, SESSION, ACCOUNT)
    assert found == ([statement] if denies else [])


# ------------------------------------------------------------------------------------------------ the least statement
@pytest.mark.parametrize(
    ("action", "resource", "least"),
    [
        ("s3:PutObject", S3_OBJECT, BUCKET_OBJECTS),
        ("s3:PutObject", "arn:aws:s3:::processed-data-bucket/a/b/c", BUCKET_OBJECTS),
        ("s3:ListBucket", "arn:aws:s3:::processed-data-bucket", "arn:aws:s3:::processed-data-bucket"),
        (
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:1:table/etl/index/by-date",
            "arn:aws:dynamodb:us-east-1:1:table/etl/index/by-date",
        ),
    ],
)
def test_the_identity_statement_is_the_action_on_the_resource_an_s3_object_its_buckets_objects(
    action: str, resource: str, least: str
) -> None:
    assert ad.identity_statement(action, resource) == {"Effect": "Allow", "Action": action, "Resource": least}


def test_the_key_statement_is_sid_named_for_the_role_and_action() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/service-role/etl_transform.role"
    assert ad.key_statement("kms:GenerateDataKey", KEY, role) == {
        "Sid": "EtlPlaybooksAccessFixEtlTransformRoleGenerateDataKey",
        "Effect": "Allow",
        "Principal": {"AWS": role},
        "Action": "kms:GenerateDataKey",
        "Resource": KEY,
    }


def test_the_key_action_names_the_role_by_its_last_path_segment() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/service-role/etl-transform"
    statement = ad.key_statement("kms:Decrypt", KEY, role)
    action = ad.add_key_statement(KEY, json.dumps({"Statement": [ADMIN]}), statement)
    assert action["description"] == f"Allow role etl-transform kms:Decrypt in the key policy of {KEY}."
    assert action["after"]["document"] == {"Statement": [ADMIN, statement]}
    assert action["before"]["document"] == {"Statement": [ADMIN]}


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": BUCKET_OBJECTS}, "s3:* is a wildcard action"),
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}, "'*' is not one resource"),
        ({"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN}, "iam:PassRole administers identities or the account"),
        ({"Effect": "Allow", "Resource": BUCKET_OBJECTS}, "* is a wildcard action"),
        ({"Effect": "Allow", "Action": "s3:PutObject"}, "'*' is not one resource"),
        ({"Effect": "Deny", "Action": "s3:PutObject", "Resource": BUCKET_OBJECTS}, "not one allowed action"),
        ({"Action": "s3:PutObject", "Resource": BUCKET_OBJECTS}, "not one allowed action"),
        ({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": BUCKET_OBJECTS}, "not one allowed action"),
    ],
)
def test_no_statement_but_one_allowed_action_on_one_resource_is_ever_written(statement: dict[str, Any], problem: str) -> None:
    with pytest.raises(PlaybookError) as refused:
        ad.merge(None, {"id": "add_identity_statement", "statement": statement, "before": {"policyName": "p", "document": None}})
    assert str(refused.value) == f"refusing to write {json.dumps(statement, sort_keys=True)}: {problem}"


@pytest.mark.parametrize(
    ("action", "refused"),
    [("s3:Put?bject", True), ("s3:PutObject", False), ("kms:Decrypt", False), ("kms:ScheduleKeyDeletion", True), ("STS:AssumeRole", True)],
)
def test_action_refusal_judges_the_service_and_name(action: str, refused: bool) -> None:
    assert (ad.action_refusal(action) is not None) is refused


def test_action_refusal_reads_the_service_before_the_first_colon() -> None:
    # A KMS-use action name with a second colon is still judged by its service and the whole name
    assert ad.action_refusal("kms:Decrypt:x") == "kms:Decrypt:x administers KMS keys"


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        ("*", "'*' is not one resource"),
        ("bucket", "'bucket' is not one resource"),
        ("arn:aws:s3:::bucket/inc?ming/*", "arn:aws:s3:::bucket/inc?ming/* contains a wildcard"),
        ("arn:aws:sqs:us-east-1:1:q?", "arn:aws:sqs:us-east-1:1:q? contains a wildcard"),
    ],
)
def test_resource_refusal_names_the_problem(resource: str, problem: str) -> None:
    assert ad.resource_refusal(resource) == problem


def test_role_refusal_needs_a_role_name_and_lists_the_pipelines_roles() -> None:
    nameless = {"kind": "role", "roleName": None, "arn": "arn:x", "accountId": ACCOUNT}
    assert (
        ad.role_refusal(nameless, ACCOUNT, SETTINGS)
        == "the denied principal arn:x is not a role; the playbook only adds permissions to roles"
    )
    other = {"kind": "role", "roleName": "reporting", "arn": "arn:x", "accountId": ACCOUNT}
    config = SETTINGS | {"pipelineRoles": ["a", "b"]}
    assert ad.role_refusal(other, ACCOUNT, config) == "the role reporting is not one of the pipeline's roles (a, b)"


# ------------------------------------------------------------------------------------------------ statement matching
@pytest.mark.parametrize(
    ("statement", "covered"),
    [
        ({"NotAction": "s3:Get*", "Resource": "*"}, True),
        ({"NotAction": ["S3:PUT*"], "Resource": "*"}, False),
        ({"NotAction": "iam:*"}, True),
        ({"Action": "s3:putobject"}, True),
        ({"Action": "s3:Put?bject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}, True),
        ({"Action": "s3:PutObject", "Resource": "arn:aws:s3:::Processed-data-bucket/*"}, False),
        ({"Action": "s3:PutObject", "NotResource": ["arn:aws:s3:::raw/*"]}, True),
        ({"Resource": "*"}, False),
    ],
)
def test_statements_cover_as_iam_matches_actions_case_blind_and_resources_exactly(statement: dict[str, Any], covered: bool) -> None:
    assert ad.statement_covers(statement, "s3:PutObject", S3_OBJECT) is covered


# ------------------------------------------------------------------------------------------------ apply: the merge
def test_the_merge_writes_the_approved_statement_into_the_policy_as_it_is_now() -> None:
    (action,) = plan(findings(message()))["actions"]
    assert ad.merge(None, action) == {
        "changed": True,
        "document": dumped({"Version": "2012-10-17", "Statement": [PUT_OBJECT]}),
        "kind": "add_identity_statement",
    }
    earlier = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::raw-data-bucket/*"}
    before = {"Version": "2012-10-17", "Statement": [earlier]}
    (extend,) = plan(findings(message(), fix_policy=before))["actions"]
    written = ad.merge(json.dumps(before), extend)
    assert written == {
        "changed": True,
        "document": dumped({"Version": "2012-10-17", "Statement": [earlier, PUT_OBJECT]}),
        "kind": "add_identity_statement",
    }
    again = ad.merge(json.loads(written["document"]), extend)
    assert again == {"changed": False, "document": written["document"]}


def test_the_merge_into_a_key_policy_keeps_every_statement() -> None:
    key_policy = {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM]}
    (action,) = key_plan(key_policy)["actions"]
    written = ad.merge(dumped(key_policy), action)
    assert json.loads(written["document"]) == {"Statement": [ADMIN, KEY_POLICY_CHANGES_BY_IAM, DECRYPT]}
    assert written["kind"] == "add_key_policy_statement"


# ------------------------------------------------------------------------------------------------ the restart
FAILED = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:etl-workflow:run-1"
PIPELINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:etl-workflow"


def restart(
    execution: dict[str, Any] | None, disposition_of: dict[str, Any] | None = None, target: dict[str, Any] | None = None
) -> dict[str, Any]:
    f = findings(message())
    if execution is not None:
        f["failedExecution"] = execution
    else:
        f["failedExecutionError"] = {"Error": "Sfn.ExecutionDoesNotExist", "Cause": "e" * 400}
    return ad.with_restart(disposition_of or plan(f), {"failedExecutionArn": FAILED} if target is None else target, f, "etl-workflow")


def test_a_failed_run_is_restarted_with_its_input_after_the_fix() -> None:
    result = restart({"status": "TIMED_OUT", "name": "r" * 80, "stateMachineArn": PIPELINE})
    name = "r" * 74 + "-retry"
    assert result["actions"][1] == {
        "id": "restart_failed_execution",
        "api": "states:StartExecution",
        "target": PIPELINE,
        "description": f"After the fix is verified, restart the timed_out pipeline execution {'r' * 80} with its original input as {name}.",
        "before": {"execution": FAILED, "status": "TIMED_OUT"},
        "after": {"execution": name, "inputOf": FAILED},
        "rollback": None,
    }
    assert result["restart"] == {"stateMachineArn": PIPELINE, "name": name, "inputOf": FAILED}


def test_an_unreadable_run_is_not_restarted_and_says_why() -> None:
    result = restart(None)
    assert result["restart"] is None and len(result["actions"]) == 1
    assert result["evidence"][-1] == f"The failed execution {FAILED} could not be read, so it is not restarted: {'e' * 300}"


def test_a_run_that_could_not_be_read_without_a_cause_still_says_so() -> None:
    f = findings(message())
    f["failedExecutionError"] = {"Error": "Sfn.ExecutionDoesNotExist"}
    result = ad.with_restart(plan(f), {"failedExecutionArn": FAILED}, f, "etl-workflow")
    assert result["evidence"][-1] == f"The failed execution {FAILED} could not be read, so it is not restarted: "


def test_a_plan_that_changes_nothing_or_names_no_run_offers_no_restart() -> None:
    execution = {"status": "FAILED", "name": "run-1", "stateMachineArn": PIPELINE}
    escalated = plan(findings(message(), "explicitDeny"))
    assert restart(execution, disposition_of=copy.deepcopy(escalated)) == escalated
    remediating = plan(findings(message()))
    assert restart(execution, disposition_of=copy.deepcopy(remediating), target={})["actions"] == remediating["actions"]
