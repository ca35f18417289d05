"""Defect 7: the stack's metric filters need the pipeline functions' log groups, which the stack does not own.

CloudFormation refuses an AWS::Logs::MetricFilter whose log group does not exist; the local account refuses it too,
and `playbooks preflight` names the missing groups before a real deploy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from playbooks import prerequisites
from playbooks.local.account import LocalAccount


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        yield local


def test_the_filtered_groups_are_the_pipeline_functions_groups() -> None:
    assert prerequisites.filtered_log_groups() == ["/aws/lambda/ingest-handler", "/aws/lambda/transform-handler"]
    assert "/aws/lambda/etl-ingest" in prerequisites.filtered_log_groups({"IngestFunctionName": "etl-ingest"})


def test_cloudformation_refuses_a_metric_filter_on_a_missing_log_group(account: LocalAccount) -> None:
    template = {
        "Resources": {
            "Filter": {
                "Type": "AWS::Logs::MetricFilter",
                "Properties": {
                    "LogGroupName": "/aws/lambda/never-ran",
                    "FilterPattern": "AccessDenied",
                    "MetricTransformations": [{"MetricNamespace": "EtlPipeline", "MetricName": "AccessDeniedErrors", "MetricValue": "1"}],
                },
            }
        }
    }
    # WHEN a stack filters a log group that does not exist
    # THEN it does not deploy
    with pytest.raises(ClientError, match="log group does not exist"):
        account.client("cloudformation").create_stack(StackName="filters-a-missing-group", TemplateBody=json.dumps(template))


def test_the_deployed_filters_exist_on_their_groups(account: LocalAccount) -> None:
    filters = account.client("logs").describe_metric_filters(
        metricName="AccessDeniedErrors", metricNamespace=f"EtlPipeline/{account.stack_name}"
    )["metricFilters"]
    assert sorted(f["logGroupName"] for f in filters) == prerequisites.filtered_log_groups()


def test_preflight_names_the_groups_a_deploy_would_miss(account: LocalAccount) -> None:
    logs = account.client("logs")
    assert prerequisites.missing_log_groups(logs) == []
    assert prerequisites.missing_log_groups(logs, {"TransformFunctionName": "never-ran"}) == ["/aws/lambda/never-ran"]
