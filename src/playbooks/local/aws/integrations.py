"""Step Functions' service integrations: aws-sdk service names, request and response casing, and error names."""

from __future__ import annotations

import datetime
import functools
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import StructureShape

from .runtime import Gap

GAPS = [
    Gap(
        "aws-sdk tasks",
        "map Step Functions' service names (cloudwatchlogs, eventbridge, servicequotas, ...) to the SDK, accept PascalCase parameters, return PascalCase fields and name errors Service.Exception with the SDK's casing",
        "knows only sfn and dynamodb: we add the rest of the names and normalise requests, responses and errors",
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
        return _service_model(self._get_boto_service_name()).operation_model(name[0].upper() + name[1:])

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
        # AWS names unmodelled errors (throttling, internal) "<Service>.<Service>Exception", modelled ones by their shape.
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            modelled = code in {shape.name for shape in operation(self).service_model.error_shapes}
            prefix = self._normalise_service_error_name(self.resource.api_name)
            name = code if modelled else prefix
            error = f"{prefix}.{name if name.endswith('Exception') else name + 'Exception'}"
            cause = f"{ex.response['Error'].get('Message', '')} (Service: {prefix}, Status Code: {ex.response['ResponseMetadata'].get('HTTPStatusCode', 400)}, Error Code: {code})"
            return self._get_task_failure_event(env=env, error=error, cause=cause)
        return original_from_error(self, env, ex)

    original_from_error = cls._from_error
    cls._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    cls._normalise_response = normalise_response  # type: ignore[method-assign,assignment]
    cls._from_error = from_error  # type: ignore[method-assign]


@functools.cache
def _service_model(service: str) -> Any:
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
