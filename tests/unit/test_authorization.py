"""The local account authorizes the stack's roles as AWS does: deployed grants, key and bucket policies, AWS's errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from playbooks.local.account import LocalAccount
from playbooks.local.aws import authorization
from playbooks.local.recorder import PRINCIPAL
from playbooks.scenario import build_world

ACCOUNT_ID = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
KEY_ID = "0f6c3a52-9d1e-4b7a-8c2f-5e4d3b2a1c0f"
ADMIN = {
    "Sid": "KeyAdministrators",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/etl-key-admin"},
    "Action": "kms:*",
    "Resource": "*",
}
ENABLE_IAM = {"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        build_world(
            local,
            {
                "functions": [{"name": "ingest-handler"}, {"name": "transform-handler"}],
                "buckets": [{"name": "raw-data-bucket"}, {"name": "processed-data-bucket", "objects": ["out/a.json"]}],
                "roles": [{"name": "etl-key-admin"}],
            },
            datetime.now(UTC),
        )
        yield local


@contextmanager
def acting_as(logical_id: str) -> Iterator[None]:
    token = PRINCIPAL.set(logical_id)
    try:
        yield
    finally:
        PRINCIPAL.reset(token)


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        call()
    return dict(error.value.response)


def test_a_call_the_role_is_not_granted_fails_with_awss_error_and_message(account: LocalAccount) -> None:
    # GIVEN the throttling verify function, whose role may read metrics only
    role = account.functions[next(n for n, f in account.functions.items() if f.logical_id == "ThrottlingVerifyFunction")].role_arn
    # WHEN it tries to change a function's concurrency
    with acting_as("ThrottlingVerifyFunction"):
        answer = refused(
            lambda: account.client("lambda").put_function_concurrency(FunctionName="ingest-handler", ReservedConcurrentExecutions=5)
        )
    # THEN Lambda refuses with 403 AccessDeniedException naming the session, the action and the function
    assert answer["Error"]["Code"] == "AccessDeniedException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 403
    session = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.rsplit('/', 1)[-1]}/"
    assert answer["Error"]["Message"].startswith(f"User: {session}")
    assert answer["Error"]["Message"].endswith(
        f"is not authorized to perform: lambda:PutFunctionConcurrency on resource: arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ingest-handler "
        "because no identity-based policy allows the lambda:PutFunctionConcurrency action"
    )
    # AND nothing changed
    assert "ReservedConcurrentExecutions" not in account.client("lambda").get_function_concurrency(FunctionName="ingest-handler")


def test_a_grant_holds_only_on_its_resources(account: LocalAccount) -> None:
    # The throttling state machine may change ingest-handler and transform-handler, nothing else.
    account.client("lambda").create_function(
        FunctionName="someone-elses",
        Runtime="python3.12",
        Role=f"arn:aws:iam::{ACCOUNT_ID}:role/lambda-execution-role",
        Handler="x.handler",
        Code={"ZipFile": b"x"},
    )
    with acting_as("LambdaThrottlingStateMachine"):
        lam = account.client("lambda")
        lam.put_function_concurrency(FunctionName="ingest-handler", ReservedConcurrentExecutions=5)
        answer = refused(lambda: lam.put_function_concurrency(FunctionName="someone-elses", ReservedConcurrentExecutions=5))
    assert "function:someone-elses because no identity-based policy allows" in answer["Error"]["Message"]
    account.client("lambda").delete_function_concurrency(FunctionName="ingest-handler")


def test_a_condition_of_the_grant_is_evaluated(account: LocalAccount) -> None:
    # The watchdog may put metric data only in its own namespace (cloudwatch:namespace condition).
    metric = [{"MetricName": "LongRunningExecutions", "Value": 1.0}]
    with acting_as("ExecutionWatchdogFunction"):
        cloudwatch = account.client("cloudwatch")
        cloudwatch.put_metric_data(Namespace="ETL/Playbooks", MetricData=metric)
        answer = refused(lambda: cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=metric))
    assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "cloudwatch:PutMetricData because no identity-based policy allows" in answer["Error"]["Message"]


def test_calls_of_the_world_and_the_operator_are_not_restricted(account: LocalAccount) -> None:
    account.client("lambda").put_function_concurrency(FunctionName="someone-elses", ReservedConcurrentExecutions=1)
    account.client("lambda").delete_function_concurrency(FunctionName="someone-elses")


def test_an_explicit_deny_in_the_bucket_policy_wins(account: LocalAccount) -> None:
    # GIVEN a bucket policy that denies everyone reading out/ (the verify role's grant allows reading every object)
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::processed-data-bucket/out/*"}
    account.client("s3").put_bucket_policy(
        Bucket="processed-data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    try:
        with acting_as("StuckExecutionVerifyFunction"):
            answer = refused(lambda: account.client("s3").get_object(Bucket="processed-data-bucket", Key="out/a.json"))
    finally:
        account.client("s3").delete_bucket_policy(Bucket="processed-data-bucket")
    assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert answer["Error"]["Message"].endswith(
        'on resource: "arn:aws:s3:::processed-data-bucket/out/a.json" with an explicit deny in a resource-based policy'
    )
    with acting_as("StuckExecutionVerifyFunction"):
        assert account.client("s3").get_object(Bucket="processed-data-bucket", Key="out/a.json")["Body"].read() == b"id,amount\n1,42\n"


def test_a_bucket_policy_naming_the_role_allows_what_its_identity_policies_do_not(account: LocalAccount) -> None:
    # GIVEN the verify role, granted reads of the processed bucket only, and an object in the raw bucket
    account.client("s3").put_object(Bucket="raw-data-bucket", Key="incoming/a.csv", Body=b"a")
    role = next(f.role_arn for f in account.functions.values() if f.logical_id == "StuckExecutionVerifyFunction")
    with acting_as("StuckExecutionVerifyFunction"):
        answer = refused(lambda: account.client("s3").get_object(Bucket="raw-data-bucket", Key="incoming/a.csv"))
    assert "because no identity-based policy allows the s3:GetObject action" in answer["Error"]["Message"]
    # WHEN the raw bucket's policy allows that role to read it THEN the same read succeeds (same account: either allows)
    allow = {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::raw-data-bucket/*"}
    account.client("s3").put_bucket_policy(Bucket="raw-data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [allow]}))
    try:
        with acting_as("StuckExecutionVerifyFunction"):
            assert account.client("s3").get_object(Bucket="raw-data-bucket", Key="incoming/a.csv")["Body"].read() == b"a"
    finally:
        account.client("s3").delete_bucket_policy(Bucket="raw-data-bucket")


def _key(account: LocalAccount, key_id: str, statements: list[dict[str, Any]]) -> str:
    from playbooks.local.aws.kms import create_key_with_id

    arn = create_key_with_id(account, key_id, json.dumps({"Version": "2012-10-17", "Statement": statements}))
    account.client("kms").create_alias(AliasName="alias/etl-pipeline", TargetKeyId=arn)
    return arn


def test_iam_grants_on_a_key_count_only_where_the_key_policy_enables_them(account: LocalAccount) -> None:
    # GIVEN the access-denied state machine, granted kms:GetKeyPolicy on the pipeline's key by IAM,
    # and the pipeline's key whose policy names only a key administrator
    arn = _key(account, KEY_ID, [ADMIN])
    kms = account.client("kms")
    try:
        # WHEN the playbook reads the key policy THEN KMS refuses: the key policy does not enable IAM policies
        with acting_as("AccessDeniedStateMachine"):
            answer = refused(lambda: kms.get_key_policy(KeyId=arn, PolicyName="default"))
        assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 400)
        assert answer["Error"]["Message"].endswith(
            f"kms:GetKeyPolicy on resource: {arn} because no resource-based policy allows the kms:GetKeyPolicy action"
        )
        # WHEN the key policy enables IAM policies THEN the same call succeeds
        kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [ADMIN, ENABLE_IAM]}))
        with acting_as("AccessDeniedStateMachine"):
            assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])["Statement"][1] == ENABLE_IAM
    finally:
        kms.delete_alias(AliasName="alias/etl-pipeline")


def test_put_key_policy_refuses_a_policy_that_locks_the_caller_out(account: LocalAccount) -> None:
    # GIVEN a key whose policy enables IAM policies, and a new policy without that statement
    arn = _key(account, "1f6c3a52-9d1e-4b7a-8c2f-5e4d3b2a1c0f", [ADMIN, ENABLE_IAM])
    kms = account.client("kms")
    locked = json.dumps({"Version": "2012-10-17", "Statement": [ADMIN]})
    try:
        with acting_as("AccessDeniedStateMachine"):
            # WHEN the playbook's role puts it THEN KMS refuses, and the policy is unchanged
            answer = refused(lambda: kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=locked))
            assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("MalformedPolicyDocumentException", 400)
            assert answer["Error"]["Message"] == "The new key policy will not allow you to update the key policy in the future."
            assert len(json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])["Statement"]) == 2
            # AND with the bypass flag it is accepted
            kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=locked, BypassPolicyLockoutSafetyCheck=True)
        assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])["Statement"] == [ADMIN]
    finally:
        kms.delete_alias(AliasName="alias/etl-pipeline")


def test_a_missing_object_is_404_only_to_a_caller_who_may_list_the_bucket(account: LocalAccount) -> None:
    # The execution-stuck verify role may list the processed bucket: a missing key is 404, not 403.
    with acting_as("StuckExecutionVerifyFunction"):
        answer = refused(lambda: account.client("s3").head_object(Bucket="processed-data-bucket", Key="out/missing.json"))
    assert answer["Error"]["Code"] == "404"
    # A principal with s3:GetObject but without s3:ListBucket gets 403 Forbidden (HEAD) and AccessDenied (GET).
    principal = authorization.Principal(
        "Reader",
        "arn:aws:iam::123456789012:role/reader",
        "arn:aws:sts::123456789012:assumed-role/reader/s",
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::processed-data-bucket/*"}],
    )
    authorizer = authorization.Authorizer(account)
    authorizer._principals["Reader"] = principal
    from playbooks.local.recorder import Call

    head = authorizer(Call(0, "s3:HeadObject", {"Bucket": "processed-data-bucket", "Key": "out/missing.json"}, "Reader", 0.0))
    get = authorizer(Call(0, "s3:GetObject", {"Bucket": "processed-data-bucket", "Key": "out/missing.json"}, "Reader", 0.0))
    present = authorizer(Call(0, "s3:HeadObject", {"Bucket": "processed-data-bucket", "Key": "out/a.json"}, "Reader", 0.0))
    assert head is not None and (head[1]["Error"], head[0].status_code) == ({"Code": "403", "Message": "Forbidden"}, 403)
    assert get is not None and get[1]["Error"]["Code"] == "AccessDenied"
    assert present is None


@pytest.mark.parametrize(
    ("condition", "context", "effect", "holds"),
    [
        ({"StringEquals": {"cloudwatch:namespace": "ETL/Playbooks"}}, {"cloudwatch:namespace": ["ETL/Playbooks"]}, "Allow", True),
        ({"StringEquals": {"cloudwatch:namespace": "ETL/Playbooks"}}, {}, "Allow", False),
        ({"StringNotEquals": {"aws:PrincipalAccount": "1"}}, {}, "Allow", True),
        ({"StringEqualsIfExists": {"s3:prefix": "out/"}}, {}, "Allow", True),
        (
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/etl-pipeline"}},
            {"kms:resourcealiases": ["alias/a", "alias/etl-pipeline"]},
            "Allow",
            True,
        ),
        ({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/etl-pipeline"}}, {}, "Allow", False),
        ({"ForAllValues:StringLike": {"kms:ResourceAliases": "alias/etl-*"}}, {}, "Allow", True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": ["true"]}, "Deny", False),
        ({"Null": {"s3:prefix": "true"}}, {}, "Allow", True),
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {}, "Allow", False),
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {}, "Deny", True),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, list[str]], effect: str, holds: bool) -> None:
    assert authorization.conditions_hold({"Effect": effect, "Condition": condition}, context) is holds
