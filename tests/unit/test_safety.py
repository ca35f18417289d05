"""What counts as a change (`playbooks.safety`): the list every scenario's `mutations` and the gate proof rely on.

A change that is left out of this list is a change no test sees, so each rule is shown keeping a change and
dropping a non-change side by side.
"""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import safety
from playbooks.local.recorder import Call

ROLE, OTHER = "playbook-role", "world-builder"


def call(api: str, params: dict[str, Any] | None = None, principal: str = ROLE, error: str | None = None) -> Call:
    return Call(seq=0, api=api, params=params or {}, principal=principal, at=0.0, error=error)


def changes(*calls: Call, own: set[str] | None = None) -> list[str]:
    return safety.mutations(calls, {ROLE}, own or set())


def test_a_change_by_the_playbook_is_named_as_step_functions_calls_it() -> None:
    assert changes(call("lambda:PutFunctionConcurrency", {"FunctionName": "ingest-handler"})) == [
        "lambda:PutFunctionConcurrency ingest-handler"
    ]
    assert changes(call("states:StopExecution", {"executionArn": "arn:x"})) == ["sfn:StopExecution arn:x"]
    assert changes(call("events:PutRule", {"Name": "etl-rule"})) == ["eventbridge:PutRule etl-rule"]
    assert changes(call("logs:PutRetentionPolicy", {"logGroupName": "/aws/lambda/x"})) == [
        "cloudwatchlogs:PutRetentionPolicy /aws/lambda/x"
    ]


def test_a_function_arn_target_is_shortened_to_its_name() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:transform-handler"
    assert changes(call("lambda:UpdateFunctionConfiguration", {"FunctionName": arn})) == [
        "lambda:UpdateFunctionConfiguration transform-handler"
    ]


def test_a_quota_request_names_the_service_and_quota() -> None:
    request = call("servicequotas:RequestServiceQuotaIncrease", {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384", "DesiredValue": 2000})
    assert changes(request) == ["servicequotas:RequestServiceQuotaIncrease lambda/L-B99A9384"]


def test_a_change_without_a_known_target_is_still_a_change() -> None:
    assert changes(call("iam:CreateSomething", {"Unknown": "x"})) == ["iam:CreateSomething"]


def test_calls_of_other_principals_are_not_the_playbooks_changes() -> None:
    assert changes(call("lambda:PutFunctionConcurrency", {"FunctionName": "f"}, principal=OTHER)) == []


def test_a_failed_call_changed_nothing() -> None:
    assert changes(call("lambda:PutFunctionConcurrency", {"FunctionName": "f"}, error="Lambda.TooManyRequestsException")) == []


@pytest.mark.parametrize(
    "api",
    [
        "lambda:GetFunctionConcurrency",
        "states:ListExecutions",
        "states:DescribeExecution",
        "cloudtrail:LookupEvents",
        "iam:SimulatePrincipalPolicy",
        "dynamodb:Query",
        "dynamodb:Scan",
        "logs:FilterLogEvents",
        "dynamodb:BatchGetItem",
        "events:TestEventPattern",
        "s3:HeadObject",
        "logs:StartQuery",
        "logs:StopQuery",
    ],
)
def test_reads_are_not_changes(api: str) -> None:
    assert changes(call(api, {"FunctionName": "f"})) == []


@pytest.mark.parametrize("api", sorted(safety.BOOKKEEPING_APIS))
def test_the_playbooks_machinery_is_not_a_change(api: str) -> None:
    assert changes(call(api, {"FunctionName": "f"})) == []


def test_writes_to_the_playbooks_own_resources_are_bookkeeping() -> None:
    lock = call("dynamodb:PutItem", {"TableName": "etl-playbooks-locks"})
    pipeline = call("dynamodb:PutItem", {"TableName": "etl-metadata"})
    assert changes(lock, pipeline, own={"etl-playbooks-locks"}) == ["dynamodb:PutItem etl-metadata"]


@pytest.mark.parametrize("operation", ["Put", "Update", "Delete", "Create", "Start", "Stop", "Request", "Attach", "Tag"])
def test_every_non_read_operation_is_a_change(operation: str) -> None:
    assert not safety.is_read_only(f"{operation}Thing")
    assert changes(call(f"svc:{operation}Thing", {"Name": "n"})) == [f"svc:{operation}Thing n"]


def test_changes_keep_their_order() -> None:
    first = call("events:DisableRule", {"Name": "r"})
    second = call("events:PutRule", {"Name": "r"})
    third = call("events:EnableRule", {"Name": "r"})
    assert changes(first, second, third) == ["eventbridge:DisableRule r", "eventbridge:PutRule r", "eventbridge:EnableRule r"]


def test_a_change_after_every_kind_of_non_change_is_still_seen() -> None:
    # GIVEN each kind of call that is not a change, then a change
    noise = [
        call("lambda:PutFunctionConcurrency", {"FunctionName": "f"}, principal=OTHER),
        call("lambda:PutFunctionConcurrency", {"FunctionName": "f"}, error="Lambda.ServiceException"),
        call("lambda:GetFunctionConcurrency", {"FunctionName": "f"}),
        call("states:SendTaskSuccess", {}),
        call("dynamodb:PutItem", {"TableName": "locks"}),
    ]
    change = call("lambda:PutFunctionConcurrency", {"FunctionName": "f"})
    # WHEN the changes are listed THEN the change after the noise is there, whatever the noise before it
    for skipped in noise:
        assert changes(skipped, change, own={"locks"}) == ["lambda:PutFunctionConcurrency f"]
