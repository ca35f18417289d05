"""CloudFormation: resource types moto's CloudFormation does not create, list parameter defaults, JSON templates."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .runtime import NO_AWS_BEHAVIOUR, Gap, Source

GAPS = [
    Gap(
        "AWS::Logs::MetricFilter",
        "is refused when its log group does not exist: the stack fails and rolls back ('The specified log group does "
        "not exist'). Source: CloudFormation user guide, AWS::Logs::MetricFilter (LogGroupName: the log group to "
        "associate with the metric filter) and CloudWatch Logs API reference, PutMetricFilter (ResourceNotFoundException)",
        "is not a resource type moto's CloudFormation creates, so any stack passes: we register one that creates the "
        "filter in moto's CloudWatch Logs and refuses a missing group; the account creates the pipeline functions' "
        "groups before it deploys, as `playbooks preflight` asks of a real account",
        sources=(
            Source(
                "AWS CloudFormation template reference, AWS::Logs::MetricFilter (LogGroupName: the name of an existing log group)",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-metricfilter.html",
            ),
            Source(
                "Amazon CloudWatch Logs API reference, PutMetricFilter",
                "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html",
            ),
        ),
    ),
    Gap(
        "AWS::ApiGateway::RestApi",
        "takes the API's name from its OpenAPI body and deploys it to a stage",
        "requires a Name property and cannot deploy an OpenAPI body: the account names the API, skips its deployment and stage, and serves the approval handler itself (simulate --decision browser)",
        sources=(
            Source(
                "AWS CloudFormation template reference, AWS::ApiGateway::RestApi",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-restapi.html",
            ),
        ),
    ),
    Gap(
        "AWS::CloudWatch::Alarm",
        "is a CloudFormation resource type",
        "is not created by moto's CloudFormation: we register a resource model that creates the alarm in moto's CloudWatch",
        sources=(
            Source(
                "AWS CloudFormation template reference, AWS::CloudWatch::Alarm",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html",
            ),
        ),
    ),
    Gap(
        "CloudFormation state machines",
        "apply DefinitionSubstitutions and run executions",
        "ignores substitutions and keeps stack state machines away from the ASL executor: the account resolves them from the stack and registers them with the executor",
        sources=(
            Source(
                "AWS CloudFormation template reference, AWS::StepFunctions::StateMachine (DefinitionSubstitutions)",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachine.html",
            ),
        ),
    ),
    Gap(
        "AWS::SNS::Subscription",
        "is a CloudFormation resource type (SAM's SNS event source creates one)",
        "is not created by moto's CloudFormation: we register a resource model that subscribes the endpoint, with its filter policy",
        sources=(
            Source(
                "AWS CloudFormation template reference, AWS::SNS::Subscription",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-subscription.html",
            ),
        ),
    ),
    Gap(
        "CloudFormation CommaDelimitedList parameters",
        "a parameter's default is split at commas like a value passed in",
        "splits only passed values and leaves a default as one string (so !Join over it joins its characters): we split defaults too",
        sources=(
            Source(
                "AWS Knowledge Center, How do I pass CommaDelimitedList parameters to nested stacks in AWS CloudFormation?",
                "https://aws.amazon.com/premiumsupport/knowledge-center/cloudformation-parameters-nested-stacks/",
            ),
        ),
    ),
    Gap(
        "cloudformation:CreateStack (speed only)",
        "reads a JSON template as JSON",
        "reads every template with PyYAML's pure-Python loader first (0.6 s for ours): we read JSON as JSON (the same "
        "document: JSON is YAML) and leave YAML templates to moto",
        sources=NO_AWS_BEHAVIOUR,
    ),
]


def _register_sns_subscription_model() -> None:
    """AWS::SNS::Subscription (SAM's SNS event source) as a CloudFormation resource type."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends

    class SnsSubscription(CloudFormationModel):  # type: ignore[misc]
        def __init__(self, arn: str):
            self.arn = arn

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:  # type: ignore[override]
            properties = cloudformation_json["Properties"]
            backend = sns_backends[account_id][region_name]
            subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
            if properties.get("FilterPolicy"):
                backend.set_subscription_attributes(subscription.arn, "FilterPolicy", json.dumps(properties["FilterPolicy"]))
            return cls(subscription.arn)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _register_metric_filter_model() -> None:
    """AWS::Logs::MetricFilter, refused on a missing log group as CloudFormation refuses it."""
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import ValidationError
    from moto.core.common_models import CloudFormationModel
    from moto.logs.models import logs_backends

    class MetricFilter(CloudFormationModel):  # type: ignore[misc]
        def __init__(self, name: str):
            self.name = name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Logs::MetricFilter"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "FilterName"

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:  # type: ignore[override]
            properties = cloudformation_json["Properties"]
            backend = logs_backends[account_id][region_name]
            group = properties["LogGroupName"]
            if group not in backend.groups:
                # CloudFormation fails the stack with CloudWatch Logs' answer; here the CreateStack call fails with it
                raise ValidationError(message=f"Resource {resource_name}: The specified log group does not exist. ({group})")
            name = properties.get("FilterName", resource_name)
            transformations = [
                {key[0].lower() + key[1:]: value for key, value in item.items()} for item in properties["MetricTransformations"]
            ]
            backend.put_metric_filter(name, properties.get("FilterPattern", ""), group, transformations)  # type: ignore[arg-type]
            return cls(name)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _register_cloudformation_models() -> None:
    """Resource types the template uses that moto's CloudFormation does not create."""
    from moto.cloudformation import parsing
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class CloudWatchAlarm(CloudFormationModel):  # type: ignore[misc]
        def __init__(self, alarm: Any):
            self.alarm = alarm

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @property
        def physical_resource_id(self) -> str:
            return str(self.alarm.name)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return str(self.alarm.alarm_arn)

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:  # type: ignore[override]
            properties = cloudformation_json["Properties"]
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=properties.get("AlarmName", resource_name),
                namespace=properties.get("Namespace"),
                metric_name=properties.get("MetricName"),
                comparison_operator=properties["ComparisonOperator"],
                evaluation_periods=int(properties["EvaluationPeriods"]),
                period=int(properties.get("Period", 60)),
                threshold=float(properties.get("Threshold", 0)),
                statistic=properties.get("Statistic"),
                description=properties.get("AlarmDescription", ""),
                dimensions=properties.get("Dimensions", []),
                alarm_actions=properties.get("AlarmActions", []),
                datapoints_to_alarm=properties.get("DatapointsToAlarm"),
                treat_missing_data=properties.get("TreatMissingData"),
            )
            return cls(alarm)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _patch_list_parameter_defaults() -> None:
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.load_parameters

    def load_parameters(self: Any) -> None:
        original(self)
        for name, slot in self._template.get("Parameters", {}).items():
            kind = slot.get("Type", "String")
            value = self.resolved_parameters.get(name)
            if (kind == "CommaDelimitedList" or kind.startswith("List")) and isinstance(value, str):
                self.resolved_parameters[name] = self._parsed_resources[name] = value.split(",")

    ResourceMap.load_parameters = load_parameters  # type: ignore[method-assign]


def _read_json_templates_as_json() -> None:
    from moto.cloudformation.models import Stack

    original = Stack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            with contextlib.suppress(ValueError):
                return dict(json.loads(template))
        return dict(original(template))

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]


def patch_moto() -> None:
    _register_metric_filter_model()
    _register_cloudformation_models()
    _register_sns_subscription_model()
    _patch_list_parameter_defaults()
    _read_json_templates_as_json()
