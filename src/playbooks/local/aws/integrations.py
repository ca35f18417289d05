"""Step Functions' service integrations: aws-sdk service names, request and response casing, and error names."""

from __future__ import annotations

import base64
import datetime
import functools
import uuid
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import StructureShape

from .runtime import Gap, Source

GAPS = [
    Gap(
        "aws-sdk tasks",
        "map Step Functions' service names (cloudwatchlogs, eventbridge, servicequotas, ...) to the SDK, accept PascalCase parameters and return PascalCase fields",
        "knows only sfn and dynamodb: we add the rest of the names and normalise requests and responses",
        sources=(
            Source(
                "AWS Step Functions developer guide, Learning to use AWS service SDK integrations in Step Functions",
                "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
            ),
        ),
    ),
    Gap(
        "aws-sdk task errors",
        "name a modelled error `<Service>.<Shape>Exception` (the shape's name, suffixed Exception if it is not: "
        "`S3.NoSuchBucketException`, `Iam.NoSuchEntityException` for the code NoSuchEntity) and any other error "
        "`<Service>.<Service>Exception` (`S3.S3Exception` for NoSuchBucketPolicy, `Iam.IamException` for AccessDenied "
        "and throttling); the Cause is the Java SDK v2 message with no error code: `The bucket policy does not exist "
        "(Service: S3, Status Code: 404, Request ID: ..., Extended Request ID: ...)`. Sources: Step Functions developer "
        "guide, 'Learning to use AWS service SDK integrations' (ServiceName.ErrorName, always with the Exception "
        "suffix); responses recorded against AWS in LocalStack's tests/aws/services/stepfunctions/v2/error_handling/"
        "test_aws_sdk.snapshot.json (S3.NoSuchBucketException, DynamoDb.DynamoDbException for a ValidationException, "
        "SecretsManager.SecretsManagerException) and services/test_aws_sdk_task_service.snapshot.json "
        "(Sfn.InvalidTokenException)",
        "names only codes that are shape names (IAM's NoSuchEntity became Iam.IamException) and we had put an invented "
        "`Error Code: <code>` in the Cause: we look the code up among the service model's error shapes (botocore's "
        "model, by shape name and declared code) and write the Cause as the SDK does",
        sources=(
            Source(
                "AWS Step Functions developer guide, Learning to use AWS service SDK integrations in Step Functions",
                "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
            ),
            Source(
                "LocalStack, responses recorded against AWS: stepfunctions/v2/error_handling/test_aws_sdk.snapshot.json",
                "https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/error_handling/test_aws_sdk.snapshot.json",
            ),
            Source(
                "LocalStack, responses recorded against AWS: stepfunctions/v2/services/test_aws_sdk_task_service.snapshot.json",
                "https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/services/test_aws_sdk_task_service.snapshot.json",
            ),
        ),
    ),
    Gap(
        "optimized integration errors (lambda:invoke, dynamodb:*, sns:publish, states:startExecution)",
        "name errors after the Java SDK v1 exception classes: `DynamoDB.ConditionalCheckFailedException`, "
        "`DynamoDB.RequestLimitExceededException`, `DynamoDB.AmazonDynamoDBException` for an unmodelled error (a "
        "ValidationException), `Lambda.ResourceNotFoundException`, `Lambda.AWSLambdaException`, "
        "`StepFunctions.StateMachineDoesNotExistException`, `SNS.<Shape>Exception`; the Cause is the v1 message, which "
        "does name the code: `... (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ValidationException; "
        "Request ID: ...; Proxy: null)`. A function's own error is its errorType with the payload as Cause. Sources: "
        "LocalStack's recorded error_handling/test_task_service_dynamodb, test_task_service_lambda and "
        "test_task_service_sfn snapshots",
        "names DynamoDB and Lambda errors `<Prefix>.<code>` (`DynamoDB.RequestLimitExceeded`, which AWS never "
        "gives): we name every optimized integration's errors as above. A test checks that every error name a "
        "playbook retries or catches is one its Task's integration can produce",
        sources=(
            Source(
                "AWS Step Functions developer guide, Handling errors in Step Functions workflows",
                "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
            ),
            Source(
                "LocalStack, responses recorded against AWS: stepfunctions/v2/error_handling/test_task_service_dynamodb.snapshot.json",
                "https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/error_handling/test_task_service_dynamodb.snapshot.json",
            ),
            Source(
                "LocalStack, responses recorded against AWS: stepfunctions/v2/error_handling/test_task_service_lambda.snapshot.json",
                "https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/error_handling/test_task_service_lambda.snapshot.json",
            ),
            Source(
                "LocalStack, responses recorded against AWS: stepfunctions/v2/error_handling/test_task_service_sfn.snapshot.json",
                "https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/error_handling/test_task_service_sfn.snapshot.json",
            ),
        ),
    ),
]


# Step Functions' aws-sdk service names that are not the SDK's; and the error-name prefix AWS uses for each.
SDK_SERVICE = {
    "cloudwatchlogs": "logs",
    "eventbridge": "events",
    "servicequotas": "service-quotas",
    "costexplorer": "ce",
    "sfn": "stepfunctions",
    "states": "stepfunctions",
    "computeoptimizer": "compute-optimizer",
}


ERROR_PREFIX = {
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "lambda": "Lambda",
    "cloudwatch": "CloudWatch",
    "cloudwatchlogs": "CloudWatchLogs",
    "eventbridge": "EventBridge",
    "iam": "Iam",
    "s3": "S3",
    "servicequotas": "ServiceQuotas",
    "costexplorer": "CostExplorer",
    "cloudtrail": "CloudTrail",
    "kms": "Kms",
    "sns": "Sns",
    "budgets": "Budgets",
    "computeoptimizer": "ComputeOptimizer",
}


def _patch_aws_sdk_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk as sdk
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService

    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = SDK_SERVICE  # type: ignore[misc]
    sdk._SERVICE_ERROR_NAMES.clear()
    sdk._SERVICE_ERROR_NAMES.update(ERROR_PREFIX)
    cls = sdk.StateTaskServiceAwsSdk

    def operation(self: Any) -> Any:
        name = self.resource.api_action
        return service_model(self._get_boto_service_name()).operation_model(name[0].upper() + name[1:])

    def normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        shape = operation(self).input_shape
        if isinstance(shape, StructureShape):
            self._to_boto_request(parameters, shape)

    def normalise_response(self: Any, result: Any, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        shape = operation(self).output_shape
        if isinstance(shape, StructureShape):
            self._from_boto_response(result, shape)
        _json_safe(result)

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            error, cause = sdk_error(self.resource.api_name, self._get_boto_service_name(), dict(ex.response))
            return self._get_task_failure_event(env=env, error=error, cause=cause)
        return original_from_error(self, env, ex)

    original_from_error = cls._from_error
    cls._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    cls._normalise_response = normalise_response  # type: ignore[method-assign,assignment]
    cls._from_error = from_error  # type: ignore[method-assign]


def _patch_optimized_integrations() -> None:
    """lambda:invoke, dynamodb:*, sns:publish and states:startExecution name their errors after the Java SDK v1
    exception classes; moto keeps the bare error code (`DynamoDB.RequestLimitExceeded`, which AWS never gives)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_dynamodb,
        state_task_service_lambda,
        state_task_service_sfn,
        state_task_service_sns,
    )

    for module, service in (
        (state_task_service_dynamodb, "dynamodb"),
        (state_task_service_lambda, "lambda"),
        (state_task_service_sns, "sns"),
        (state_task_service_sfn, "stepfunctions"),
    ):
        cls = next(
            value for name, value in vars(module).items() if name.startswith("StateTaskService") and value.__module__ == module.__name__
        )
        _name_optimized_errors(cls, service)


def _name_optimized_errors(cls: Any, service: str) -> None:
    original = cls._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            error, cause = optimized_error(service, dict(ex.response))
            return _task_failure(self, env, error, cause)
        return original(self, env, ex)

    cls._from_error = from_error


def _task_failure(task: Any, env: Any, error: str, cause: str) -> Any:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    details = TaskFailedEventDetails(
        error=error, cause=cause, resource=task._get_sfn_resource(), resourceType=task._get_sfn_resource_type()
    )
    return FailureEvent(
        env=env,
        error_name=CustomErrorName(error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=details),  # type: ignore[typeddict-item]
    )


def error_prefix(sfn_service: str) -> str:
    """The prefix of an aws-sdk Task's error names: `Iam` in `Iam.NoSuchEntityException`."""
    return ERROR_PREFIX.get(sfn_service, sfn_service[0].upper() + sfn_service[1:])


def exception_class(shape_name: str) -> str:
    """An error shape's name as Step Functions names it, always with the Exception suffix."""
    return shape_name if shape_name.endswith("Exception") else shape_name + "Exception"


def _exception_name(boto_service: str, code: str) -> str | None:
    """The SDK's exception class for an error code the service models (the shape's name, which can differ from the
    code: IAM's NoSuchEntity is NoSuchEntityException); None when the service does not model the code."""
    for shape in service_model(boto_service).error_shapes:
        if shape.metadata.get("error", {}).get("code", shape.name) == code or shape.name == code:
            return exception_class(shape.name)
    return None


def _request_id(response: dict[str, Any]) -> str:
    return str(response.get("ResponseMetadata", {}).get("RequestId") or uuid.uuid4())


def sdk_error(sfn_service: str, boto_service: str, response: dict[str, Any]) -> tuple[str, str]:
    """An aws-sdk task's error and cause as Step Functions reports them: `<Service>.<Shape>Exception` for a modelled
    error, `<Service>.<Service>Exception` for any other; the cause is the Java SDK v2 message, which has no error
    code: `<message> (Service: <Service>, Status Code: <n>, Request ID: <id>)`, S3 adding its extended request id."""
    prefix = error_prefix(sfn_service)
    code = str(response["Error"]["Code"])
    name = _exception_name(boto_service, code) or f"{prefix}Exception"
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    details = f"Service: {prefix}, Status Code: {status}, Request ID: {_request_id(response)}"
    if boto_service == "s3":
        details += f", Extended Request ID: {base64.b64encode(uuid.uuid4().bytes).decode()}"
    return f"{prefix}.{name}", f"{response['Error'].get('Message', '')} ({details})"


# The optimized integrations: error prefix, the Java SDK v1 client's service name and its base exception.
OPTIMIZED = {
    "dynamodb": ("DynamoDB", "AmazonDynamoDBv2", "AmazonDynamoDBException"),
    "lambda": ("Lambda", "AWSLambda", "AWSLambdaException"),
    "sns": ("SNS", "AmazonSNS", "AmazonSNSException"),
    "stepfunctions": ("StepFunctions", "AWSStepFunctions", "AWSStepFunctionsException"),
}


def optimized_error(boto_service: str, response: dict[str, Any]) -> tuple[str, str]:
    """An optimized integration's error and cause: `<Prefix>.<Shape>Exception` for a modelled error, the client's
    base exception otherwise; the cause is the Java SDK v1 message, which does name the error code."""
    prefix, client, base = OPTIMIZED[boto_service]
    code = str(response["Error"]["Code"])
    name = _exception_name(boto_service, code) or base
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    details = f"Service: {client}; Status Code: {status}; Error Code: {code}; Request ID: {_request_id(response)}; Proxy: null"
    return f"{prefix}.{name}", f"{response['Error'].get('Message', '')} ({details})"


@functools.cache
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def _json_safe(value: Any) -> None:
    """Step Functions hands results on as JSON: timestamps become ISO strings, in place."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = item.isoformat()
        else:
            _json_safe(item)


def patch_moto() -> None:
    _patch_aws_sdk_tasks()
    _patch_optimized_integrations()
