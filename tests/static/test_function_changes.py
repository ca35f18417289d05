"""What a Lambda task may change, judged from its function's grants (`validate.function_changes`): the half of the
approval-gate proof that sees through a Lambda. Each test is a crafted template, so the rule is shown on its own."""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import project, validate

OWN_TABLE = {"Fn::GetAtt": ["LocksTable", "Arn"]}
PIPELINE_FUNCTION = {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${IngestFunctionName}"}


@pytest.fixture
def template(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    crafted: dict[str, Any] = {
        "Parameters": {"IngestFunctionName": {"Type": "String"}},
        "Resources": {
            "LocksTable": {"Type": "AWS::DynamoDB::Table"},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": []}},
        },
    }
    monkeypatch.setattr(project, "template", lambda: crafted)
    return crafted


def grant(template: dict[str, Any], *statements: dict[str, Any]) -> list[str]:
    template["Resources"]["Fn"]["Properties"]["Policies"] = [{"Statement": list(statements)}]
    return validate.function_changes("Fn")


def allow(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_a_write_on_a_pipeline_resource_is_a_change(template: dict[str, Any]) -> None:
    assert grant(template, allow("lambda:PutFunctionConcurrency", PIPELINE_FUNCTION)) == ["lambda:PutFunctionConcurrency"]


def test_a_write_on_anything_is_a_change(template: dict[str, Any]) -> None:
    assert grant(template, allow(["states:StopExecution"])) == ["states:StopExecution"]
    assert grant(template, {"Effect": "Allow", "Action": "states:StopExecution"}) == ["states:StopExecution"]  # no Resource: any


def test_reads_bookkeeping_and_own_logs_are_no_change(template: dict[str, Any]) -> None:
    reads = allow(["lambda:GetFunctionConcurrency", "states:DescribeExecution", "cloudwatch:PutMetricData"])
    logs = allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"])
    assert grant(template, reads, logs) == []


def test_a_write_only_on_the_stacks_own_resources_is_bookkeeping(template: dict[str, Any]) -> None:
    assert grant(template, allow("dynamodb:PutItem", OWN_TABLE)) == []


def test_a_grant_naming_a_parameter_is_not_the_stacks_own(template: dict[str, Any]) -> None:
    # the pipeline function is named by a parameter, not by one of the stack's resources
    assert grant(template, allow("lambda:UpdateFunctionConfiguration", [OWN_TABLE, PIPELINE_FUNCTION])) == [
        "lambda:UpdateFunctionConfiguration"
    ]


def test_every_grant_is_judged_after_a_bookkeeping_one(template: dict[str, Any]) -> None:
    assert grant(template, allow("dynamodb:PutItem", OWN_TABLE), allow("iam:PutRolePolicy")) == ["iam:PutRolePolicy"]


def test_a_deny_grants_nothing(template: dict[str, Any]) -> None:
    assert grant(template, {"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": "*"}) == []


def test_sam_policy_templates_and_managed_policies_are_judged_by_what_they_grant(template: dict[str, Any]) -> None:
    policies = template["Resources"]["Fn"]["Properties"]
    policies["Policies"] = [{"StepFunctionsExecutionPolicy": {"StateMachineName": "etl-workflow"}}]
    assert validate.function_changes("Fn") == ["states:StartExecution"]
    policies["Policies"] = [{"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["LocksTable", "Arn"]}}}]
    assert validate.function_changes("Fn") == []  # only the stack's own topic
    policies["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": "etl-metadata"}}]
    assert validate.function_changes("Fn") == ["DynamoDBCrudPolicy (a SAM policy template)"]  # unknown: a change
    policies["Policies"] = ["AmazonS3FullAccess"]
    assert validate.function_changes("Fn") == ["AmazonS3FullAccess (a managed policy)"]


def test_a_lambda_task_names_its_function_and_every_change_it_may_make() -> None:
    # GIVEN event-loop's stopper as the template deploys it
    stopper = {"Type": "Task", "Resource": validate.LAMBDA_INVOKE, "Parameters": {"FunctionName": "${StopFunctionArn}"}}
    # THEN its reason names the function and its changes, comma-separated
    reason = validate.mutating_reason(stopper, "EventLoopStateMachine")
    assert reason == f"lambda EventLoopStopFunction may call {', '.join(validate.function_changes('EventLoopStopFunction'))}"
    assert validate.function_of("EventLoopStateMachine", "${StopFunctionArn}") == "EventLoopStopFunction"


def test_a_placeholder_that_is_not_a_function_attribute_is_taken_as_named() -> None:
    assert validate.function_of("EventLoopStateMachine", "${NoSuchPlaceholder}") == "NoSuchPlaceholder"


def test_a_grant_on_every_one_of_the_stacks_resources_is_still_bookkeeping(template: dict[str, Any]) -> None:
    every = [{"Fn::GetAtt": [name, "Arn"]} for name in template["Resources"]]
    assert grant(template, allow("dynamodb:PutItem", every)) == []


def test_a_lambda_task_of_a_crafted_machine_lists_each_change(template: dict[str, Any]) -> None:
    # GIVEN a state machine whose Lambda task's function may change two things
    template["Resources"]["Machine"] = {
        "Type": "AWS::Serverless::StateMachine",
        "Properties": {"DefinitionSubstitutions": {"FnArn": {"Fn::GetAtt": ["Fn", "Arn"]}}},
    }
    grant(template, allow(["iam:PutRolePolicy", "states:StopExecution"]))
    task = {"Type": "Task", "Resource": validate.LAMBDA_INVOKE, "Parameters": {"FunctionName": "${FnArn}"}}
    # THEN the reason names the function and both changes
    assert validate.mutating_reason(task, "Machine") == "lambda Fn may call iam:PutRolePolicy, states:StopExecution"
