"""Reading access-denied messages: the real variants AWS and the SDKs produce, and robustness on anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import denied_message as dm

ROLE = "arn:aws:sts::123456789012:assumed-role/lambda-execution-role/ingest-handler"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # IAM's own form, as DynamoDB returns it through the SDK
        (
            "An error occurred (AccessDeniedException) when calling the PutItem operation: User: "
            f"{ROLE} is not authorized to perform: dynamodb:PutItem on resource: "
            "arn:aws:dynamodb:us-east-1:123456789012:table/etl-metadata because no identity-based policy allows the dynamodb:PutItem action",
            (
                "lambda-execution-role",
                "ingest-handler",
                "dynamodb:PutItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/etl-metadata",
                "no-identity-allow",
            ),
        ),
        # S3 quotes the resource
        (
            f'User: {ROLE} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::processed-data-bucket/out/a b.parquet" '
            "because no identity-based policy allows the s3:PutObject action",
            (
                "lambda-execution-role",
                "ingest-handler",
                "s3:PutObject",
                "arn:aws:s3:::processed-data-bucket/out/a b.parquet",
                "no-identity-allow",
            ),
        ),
        # the runbook's form: no session name, no resource, no reason
        (
            "User: arn:aws:sts::123456789012:assumed-role/lambda-execution-role is not authorized to perform: s3:PutObject",
            ("lambda-execution-role", None, "s3:PutObject", None, "unspecified"),
        ),
        # explicit deny in a bucket policy, sentence ends with a period
        (
            f"User: {ROLE} is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::raw-data-bucket/in/x.csv "
            "with an explicit deny in a resource-based policy.",
            ("lambda-execution-role", "ingest-handler", "s3:GetObject", "arn:aws:s3:::raw-data-bucket/in/x.csv", "resource-deny"),
        ),
        # KMS: the key policy does not allow
        (
            f"User: {ROLE} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:123456789012:key/1234abcd "
            "because no resource-based policy allows the kms:Decrypt action",
            (
                "lambda-execution-role",
                "ingest-handler",
                "kms:Decrypt",
                "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
                "no-resource-allow",
            ),
        ),
        # KMS: the ciphertext variant names no key
        (
            f"User: {ROLE} is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because the resource "
            "does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access",
            ("lambda-execution-role", "ingest-handler", "kms:Decrypt", None, "resource-policy"),
        ),
        # a role ARN with a path, and a session name with an e-mail address
        (
            "User: arn:aws:iam::123456789012:role/service-role/etl-transform is not authorized to perform: sqs:SendMessage on resource: "
            "arn:aws:sqs:us-east-1:123456789012:etl-dlq with an explicit deny in a service control policy",
            ("etl-transform", None, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:etl-dlq", "service-control-policy"),
        ),
        (
            "User: arn:aws-us-gov:sts::123456789012:assumed-role/ops/jane.doe@example.com is not authorized to perform: "
            "logs:CreateLogGroup because no permissions boundary allows the logs:CreateLogGroup action",
            ("ops", "jane.doe@example.com", "logs:CreateLogGroup", None, "permissions-boundary"),
        ),
    ],
)
def test_real_variants(message: str, expected: tuple[str, str | None, str, str | None, str]) -> None:
    parsed = dm.parse(message)
    got = (parsed["principal"]["roleName"], parsed["principal"]["sessionName"], parsed["action"], parsed["resource"], parsed["reason"])
    assert got == expected


def test_inside_a_json_log_line() -> None:
    # GIVEN a Powertools log line whose exception text carries S3's quoted resource, JSON-escaped
    line = json.dumps(
        {
            "level": "ERROR",
            "exception": f'ClientError: User: {ROLE} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::processed-data-bucket/o.parquet" '
            "because no identity-based policy allows the s3:PutObject action",
        }
    )
    # WHEN it is read THEN the resource is the ARN without the escaped quotes
    assert dm.parse(line)["resource"] == "arn:aws:s3:::processed-data-bucket/o.parquet"


def test_users_are_principals_but_not_roles() -> None:
    parsed = dm.parse("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::b")
    assert (parsed["principal"]["kind"], parsed["principal"]["roleName"]) == ("user", None)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("An error occurred (AccessDenied) when calling the PutObject operation: Access Denied", "no 'is not authorized to perform"),
        ("User is not authorized to perform: dynamodb:PutItem", "names no principal"),
        (f"User: {ROLE} is not authorized to perform: the action", "names no action"),
        (f"User: {ROLE} is not authorized to perform: s3:GetObject on resource: bucket/key", "is not an ARN"),
        ("", "empty"),
    ],
)
def test_unparseable_messages_say_what_is_missing(message: str, problem: str) -> None:
    with pytest.raises(dm.Unparseable, match=problem):
        dm.parse(message)


@given(st.text(max_size=400))
def test_any_text_is_parsed_or_refused_never_crashes(text: str) -> None:
    try:
        parsed = dm.parse(text)
    except dm.Unparseable:
        return
    assert ":" in parsed["action"]


names = st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,40}", fullmatch=True)
actions = st.tuples(st.from_regex(r"[a-z][a-z0-9-]{1,15}", fullmatch=True), st.from_regex(r"[A-Z][A-Za-z]{1,30}", fullmatch=True))


@given(role=names, session=names, action=actions, key=st.from_regex(r"[A-Za-z0-9/._-]{1,60}", fullmatch=True), quoted=st.booleans())
def test_generated_messages_round_trip(role: str, session: str, action: tuple[str, str], key: str, quoted: bool) -> None:
    resource = f"arn:aws:s3:::processed-data-bucket/{key}"
    shown = f'"{resource}"' if quoted else resource
    message = f"User: arn:aws:sts::123456789012:assumed-role/{role}/{session} is not authorized to perform: {action[0]}:{action[1]} on resource: {shown}"
    parsed = dm.parse(message)
    assert (parsed["principal"]["roleName"], parsed["principal"]["sessionName"]) == (role, session)
    assert parsed["action"] == f"{action[0]}:{action[1]}"
    assert parsed["resource"] == (resource if quoted else resource.rstrip(".,;"))
