"""Errors shaped as Step Functions gives them, and every error name a playbook retries or catches one it can get.

Expected values come from AWS: the Step Functions developer guide (aws-sdk errors are `<Service>.<Name>Exception`)
and Step Functions responses recorded against AWS in LocalStack's snapshot tests
(tests/aws/services/stepfunctions/v2/error_handling/*.snapshot.json).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from playbooks import project, validate
from playbooks.local.aws import integrations
from playbooks.retry_choices import denials_retried


def aws_error(code: str, message: str, status: int = 400) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "REQ"}}


def test_unmodelled_s3_error_is_the_service_exception_with_the_java_sdk_cause() -> None:
    # WHEN GetBucketPolicy answers NoSuchBucketPolicy (not in S3's API model)
    error, cause = integrations.sdk_error("s3", "s3", aws_error("NoSuchBucketPolicy", "The bucket policy does not exist", 404))
    # THEN it is S3.S3Exception, and the cause has status and request ids but no error code
    assert error == "S3.S3Exception"
    assert cause.startswith("The bucket policy does not exist (Service: S3, Status Code: 404, Request ID: REQ, Extended Request ID: ")
    assert "Error Code" not in cause and "NoSuchBucketPolicy" not in cause


@pytest.mark.parametrize(
    ("service", "boto", "code", "expected"),
    [
        ("s3", "s3", "NoSuchBucket", "S3.NoSuchBucketException"),  # recorded: S3.NoSuchBucketException
        ("s3", "s3", "NoSuchKey", "S3.NoSuchKeyException"),  # recorded: S3.NoSuchKeyException
        ("dynamodb", "dynamodb", "ResourceNotFoundException", "DynamoDb.ResourceNotFoundException"),  # recorded
        ("dynamodb", "dynamodb", "ValidationException", "DynamoDb.DynamoDbException"),  # recorded
        ("sfn", "stepfunctions", "InvalidToken", "Sfn.InvalidTokenException"),  # recorded
        ("iam", "iam", "NoSuchEntity", "Iam.NoSuchEntityException"),  # code NoSuchEntity, shape NoSuchEntityException
        ("iam", "iam", "AccessDenied", "Iam.IamException"),  # IAM's model has no AccessDenied
        ("iam", "iam", "Throttling", "Iam.IamException"),
        ("sfn", "stepfunctions", "ThrottlingException", "Sfn.SfnException"),
    ],
)
def test_aws_sdk_error_names(service: str, boto: str, code: str, expected: str) -> None:
    assert integrations.sdk_error(service, boto, aws_error(code, "m"))[0] == expected


@pytest.mark.parametrize(
    ("service", "code", "expected"),
    [
        ("dynamodb", "ValidationException", "DynamoDB.AmazonDynamoDBException"),  # recorded
        ("dynamodb", "ResourceNotFoundException", "DynamoDB.ResourceNotFoundException"),  # recorded
        ("dynamodb", "RequestLimitExceeded", "DynamoDB.RequestLimitExceededException"),
        ("lambda", "ResourceNotFoundException", "Lambda.ResourceNotFoundException"),  # recorded
        ("stepfunctions", "StateMachineDoesNotExist", "StepFunctions.StateMachineDoesNotExistException"),  # recorded
        ("sns", "NotFound", "SNS.NotFoundException"),
    ],
)
def test_optimized_integration_error_names(service: str, code: str, expected: str) -> None:
    assert integrations.optimized_error(service, aws_error(code, "m"))[0] == expected


def test_optimized_integration_cause_is_the_java_sdk_v1_message() -> None:
    _, cause = integrations.optimized_error("dynamodb", aws_error("ValidationException", "1 validation error detected"))
    assert (
        cause
        == "1 validation error detected (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ValidationException; Request ID: REQ; Proxy: null)"
    )


# Client-side names AWS's own Lambda retry guidance lists; the SDK raises them without a service response.
LAMBDA_CLIENT_SIDE = {
    "Lambda.SdkClientException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.TooManyRequestsException",
}


def producible(resource: str, name: str) -> bool:
    """Whether a Task on `resource` can fail with error `name` on AWS."""
    if name.startswith("States.") or "." not in name:
        return True  # Step Functions' own errors; a Lambda function's errorType or a Fail state's error
    prefix, exception = name.split(".", 1)
    if resource.startswith(validate.SDK_PREFIX):
        service = resource.removeprefix(validate.SDK_PREFIX).split(":")[0]
        boto = integrations.SDK_SERVICE.get(service, service)
        expected_prefix = integrations.ERROR_PREFIX[service]
        names = {
            integrations.sdk_error(service, boto, aws_error(shape.name, ""))[0] for shape in integrations.service_model(boto).error_shapes
        }
        return prefix == expected_prefix and (exception == f"{prefix}Exception" or name in names)
    for boto, (expected_prefix, _, base) in integrations.OPTIMIZED.items():
        if resource.startswith(f"arn:aws:states:::{ {'stepfunctions': 'states'}.get(boto, boto) }:"):
            names = {
                integrations.optimized_error(boto, aws_error(shape.name, ""))[0] for shape in integrations.service_model(boto).error_shapes
            }
            allowed = names | {f"{expected_prefix}.{base}"} | (LAMBDA_CLIENT_SIDE if boto == "lambda" else set())
            return name in allowed
    return False


def error_names() -> Iterator[tuple[str, str, str, str]]:
    for machine in project.state_machines().values():
        for state_name, state in validate.states_of(json.loads(machine.asl_path.read_text())):
            for handler in [*state.get("Retry", []), *state.get("Catch", [])]:
                for name in handler["ErrorEquals"]:
                    yield machine.id, state_name, str(state.get("Resource", "")), name


def test_every_retried_or_caught_error_name_is_one_aws_can_give() -> None:
    # WHEN every Retry and Catch of every state machine (the undo's too) is read
    # THEN each error name is one the state's integration produces (a name AWS never gives is a dead retrier)
    dead = [f"{playbook} / {state}: {name}" for playbook, state, resource, name in error_names() if not producible(resource, name)]
    assert not dead


def test_no_first_attempt_of_an_aws_sdk_call_retries_a_denial() -> None:
    # WHEN every aws-sdk Task's first attempt is read, in every state machine
    retried = [f"{machine.id} / {found}" for machine in project.state_machines().values() for found in denials_retried(machine.definition)]
    # THEN none retries the error name its denial comes as: a denial is the answer, not a reason to wait and ask again
    assert not retried, f"{len(retried)} retriers retry a denial: {retried}; run playbooks retry-choices, which rewrites them"


def retry_choices() -> Iterator[tuple[str, str, list[str]]]:
    """(state machine, Choice, the Cause patterns that send an error to its denial branch) of every retry Choice."""
    for machine in project.state_machines().values():
        for name, state in validate.states_of(machine.definition):
            if name.endswith(": retry?"):
                yield machine.id, name, [c["StringMatches"] for rule in state["Choices"] for c in rule["Or"]]


@pytest.mark.parametrize(
    ("service", "code", "message", "status", "denied"),
    [
        ("iam", "AccessDenied", "User: r is not authorized to perform: iam:SimulatePrincipalPolicy", 403, True),
        ("kms", "AccessDeniedException", "User: r is not authorized to perform: kms:GetKeyPolicy on resource: k", 400, True),
        ("sfn", "AccessDeniedException", "User: r is not authorized to perform: states:StopExecution", 400, True),
        ("s3", "403", "Forbidden", 403, True),  # a denied HEAD: no body, no code
        ("s3", "NoSuchBucketPolicy", "The bucket policy does not exist", 404, True),
        ("iam", "Throttling", "Rate exceeded", 400, False),
        ("kms", "ThrottlingException", "Rate exceeded", 400, False),
        ("s3", "SlowDown", "Please reduce your request rate.", 503, False),
        ("cloudwatch", "InternalFailure", "An internal error occurred", 500, False),
    ],
)
def test_each_retry_choice_tells_the_accounts_denials_from_errors_that_may_pass(
    service: str, code: str, message: str, status: int, denied: bool
) -> None:
    # GIVEN the error as the local account answers it, named and caused as Step Functions reports it
    name, cause = integrations.sdk_error(service, integrations.SDK_SERVICE.get(service, service), aws_error(code, message, status))
    prefix = integrations.ERROR_PREFIX[service]
    assert name == f"{prefix}.{prefix}Exception"  # the base class: only the Cause can tell it apart
    choices = list(retry_choices())
    assert choices
    # THEN every retry Choice sends a denial or a 404 to its denial branch and anything else to the retry
    for machine, choice, patterns in choices:
        assert any(fnmatch.fnmatchcase(cause, p) for p in patterns) == denied, f"{machine} / {choice}: {cause}"
