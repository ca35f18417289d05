"""iam:SimulatePrincipalPolicy in the local account evaluates with the authorizer's own evaluator: the two agree."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.local.aws import authorization, iam

DECISION = {"Deny": "explicitDeny", "Allow": "allowed", None: "implicitDeny"}
ROLE = "arn:aws:iam::123456789012:role/etl"


def simulate(policy_statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]) -> str:
    return iam._evaluate([("inline", "role", {"Statement": policy_statements})], action, resource, context)[0]


@pytest.mark.parametrize(
    ("statement", "action", "resource", "decision"),
    [
        # a Deny whose negated condition key is missing applies (IAM: a missing key satisfies a negated operator)
        (
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}},
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            "explicitDeny",
        ),
        # an Allow whose condition key is missing does not apply
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            "implicitDeny",
        ),
        # Null: true holds when the key is missing
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Null": {"aws:SourceVpc": "true"}}},
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            "allowed",
        ),
        ({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}, "s3:PutObject", "arn:aws:s3:::b/k", "allowed"),
        ({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}, "s3:DeleteObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ({"Effect": "Allow", "Action": "S3:put?bject", "Resource": "arn:aws:s3:::b/*"}, "s3:PutObject", "arn:aws:s3:::b/k", "allowed"),
        (
            {"Effect": "Allow", "Action": "s3:PutObject", "NotResource": "arn:aws:s3:::b/*"},
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            "implicitDeny",
        ),
        # resource ARNs are case-sensitive, actions are not
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::B/*"}, "s3:PutObject", "arn:aws:s3:::b/k", "implicitDeny"),
    ],
)
def test_crafted_cases(statement: dict[str, Any], action: str, resource: str, decision: str) -> None:
    # WHEN the simulator and the authorizer evaluate the same statement without context
    # THEN both reach IAM's documented decision
    assert simulate([statement], action, resource, {}) == decision
    assert DECISION[authorization.decide([statement], action, resource, {})] == decision


ACTIONS = ["s3:GetObject", "s3:PutObject", "kms:Decrypt", "iam:PutRolePolicy"]
RESOURCES = ["arn:aws:s3:::raw/data.csv", "arn:aws:s3:::processed/out.csv", "arn:aws:kms:us-east-1:123456789012:key/k1"]
PATTERNS = st.sampled_from(["*", "s3:*", "s3:Get*", "S3:PUTOBJECT", "kms:*", "iam:Put?olePolicy", "s3:?etObject", "sts:*"])
RESOURCE_PATTERNS = st.sampled_from(
    ["*", "arn:aws:s3:::raw/*", "arn:aws:s3:::*/out.csv", "arn:aws:kms:*", "arn:aws:s3:::processed/?ut.csv"]
)
CONDITIONS = st.sampled_from(
    [
        None,
        {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
        {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
        {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
        {"Bool": {"aws:SecureTransport": "false"}},
        {"Null": {"aws:SourceVpc": "true"}},
        {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/etl"}},
    ]
)


@st.composite
def statements(draw: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    statement["Action" if draw(st.booleans()) else "NotAction"] = draw(st.lists(PATTERNS, min_size=1, max_size=2))
    statement["Resource" if draw(st.booleans()) else "NotResource"] = draw(st.lists(RESOURCE_PATTERNS, min_size=1, max_size=2))
    condition = draw(CONDITIONS)
    if condition:
        statement["Condition"] = condition
    return statement


CONTEXTS = st.sampled_from(
    [{}, {"aws:requestedregion": ["us-east-1"]}, {"aws:securetransport": ["false"], "kms:resourcealiases": ["alias/etl", "alias/x"]}]
)


@settings(max_examples=300, deadline=None)
@given(
    policy=st.lists(statements(), min_size=1, max_size=4),
    action=st.sampled_from(ACTIONS),
    resource=st.sampled_from(RESOURCES),
    context=CONTEXTS,
)
def test_the_simulator_decides_as_the_authorizer(
    policy: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]
) -> None:
    # WHEN any policy is evaluated for one request, by the simulator and by the authorizer
    # THEN they decide alike
    assert simulate(policy, action, resource, context) == DECISION[authorization.decide(policy, action, resource, context)]
