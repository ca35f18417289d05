"""Sizing, scope, plan and trigger parsing of the cost-spike playbook (plain functions, no AWS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cost_spike as cs
import validate_input
from shared.errors import InvalidInput

EVENTS = Path(__file__).resolve().parents[2] / "events"
CONFIG = dict(validate_input.CONFIG_DEFAULTS)
SCOPE = {
    "functions": ["ingest-handler", "transform-handler"],
    "tables": ["etl-metadata"],
    "buckets": ["raw-data-bucket", "processed-data-bucket"],
    "logGroups": ["/aws/lambda/ingest-handler"],
}
COSTS = cs.cost_table(
    [
        {
            "TimePeriod": {"Start": "2026-11-23"},
            "Groups": [{"Keys": ["AWS Lambda"], "Metrics": {"BlendedCost": {"Amount": "30", "Unit": "USD"}}}],
        },
        {
            "TimePeriod": {"Start": "2026-11-24"},
            "Groups": [
                {"Keys": ["AWS Lambda"], "Metrics": {"BlendedCost": {"Amount": "50", "Unit": "USD"}}},
                {"Keys": ["Amazon DynamoDB"], "Metrics": {"BlendedCost": {"Amount": "20", "Unit": "USD"}}},
            ],
        },
    ]
) | {"window": {"start": "2026-11-23", "end": "2026-11-25", "days": 2}, "processedFiles": None, "costPerFile": None}


def memory_finding(target: str, after: int, floor: int, saving: float = 20.0) -> dict[str, Any]:
    action = {
        "id": f"lower_memory_{cs.slug(target)}",
        "kind": "lambda-memory",
        "api": "lambda:UpdateFunctionConfiguration",
        "target": target,
        "description": "",
        "before": {"memorySize": 1024},
        "after": {"memorySize": after},
        "rollback": None,
        "monthlySaving": saving,
        "floorMb": floor,
    }
    return {"kind": "lambda-memory", "resource": target, "evidence": f"{target} sized", "monthlySaving": saving, "action": action}


@given(peak=st.integers(min_value=1, max_value=10_240), headroom=st.integers(min_value=10, max_value=200))
def test_proposed_memory_is_never_below_the_peak_plus_headroom(peak: int, headroom: int) -> None:
    proposed = cs.proposed_memory(peak, headroom)
    assert proposed >= peak * (1 + headroom / 100)
    assert proposed % cs.MEMORY_STEP_MB == 0 and proposed >= cs.MIN_MEMORY_MB


def test_cost_table_ranks_services_with_their_share() -> None:
    assert COSTS["total"] == 100.0
    assert [(row["service"], row["share"]) for row in COSTS["top"]] == [("AWS Lambda", 80.0), ("Amazon DynamoDB", 20.0)]
    assert COSTS["daily"] == [{"date": "2026-11-23", "amount": 30.0}, {"date": "2026-11-24", "amount": 70.0}]


def test_plan_has_one_action_per_finding_within_scope_only() -> None:
    # GIVEN a finding on a pipeline function and one on a function outside the pipeline
    findings = [memory_finding("transform-handler", 448, 301), memory_finding("other-team-handler", 128, 60)]
    # WHEN the plan is made THEN only the pipeline's function is proposed, with the cost table in the evidence
    plan = cs.plan(COSTS, findings, SCOPE, CONFIG)
    assert [action["target"] for action in plan["actions"]] == ["transform-handler"]
    assert plan["evidence"][1] == "Top contributors: AWS Lambda $80.00 (80.0%), Amazon DynamoDB $20.00 (20.0%)."
    assert plan["estimatedMonthlySaving"] == 20.0


def test_plan_refuses_memory_below_the_observed_peak_plus_headroom() -> None:
    with pytest.raises(ValueError, match="below its observed peak"):
        cs.plan(COSTS, [memory_finding("transform-handler", 320, 301)], SCOPE, CONFIG)


def test_small_savings_and_runaways_are_reported_not_proposed() -> None:
    runaway = {
        "kind": "runaway-executions",
        "resource": "etl-workflow",
        "evidence": "480/min",
        "monthlySaving": 0.0,
        "recommendation": "run event-loop",
    }
    plan = cs.plan(COSTS, [memory_finding("transform-handler", 448, 301, saving=0.2), runaway], SCOPE, CONFIG)
    assert (plan["case"], plan["actions"]) == ("nothing-to-change", [])
    assert "run event-loop" in plan["recommendations"]
    assert any(item.startswith("Follow-up: re-check in 7 days") for item in plan["recommendations"])
    assert "Top contributors: AWS Lambda $80.00 (80.0%), Amazon DynamoDB $20.00 (20.0%)." in plan["evidence"]


def test_budget_notification_becomes_input_naming_the_budget() -> None:
    sns = json.loads((EVENTS / "cost-spike-budget-alert.json").read_text())["Records"][0]["Sns"]
    document = cs.input_from_notification(sns["Subject"], sns["Message"])
    assert document["budgetName"] == "etl-pipeline-monthly"
    assert document["alert"] | {"summary": ""} == {
        "source": "budgets",
        "summary": "",
        "actual": 412.37,
        "threshold": 400.0,
        "budgeted": 500.0,
    }


def test_anomaly_notification_becomes_input_with_its_impact() -> None:
    sns = json.loads((EVENTS / "cost-spike-anomaly.json").read_text())["Records"][0]["Sns"]
    alert = cs.input_from_notification(sns["Subject"], sns["Message"])["alert"]
    assert alert["source"] == "anomaly-detection"
    assert "impact $122.80 in AWS Lambda" in alert["summary"]


def test_unknown_notification_still_starts_an_investigation() -> None:
    assert cs.input_from_notification("Spend alert", "free text")["alert"] == {"source": "notification", "summary": "Spend alert"}


def test_input_naming_another_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COST_BUDGET_NAME", "etl-pipeline-monthly")
    result = validate_input.validate("cost-spike", {}, "arn:x", "2026-11-25T03:00:00.000Z")
    assert (result["target"], result["lock"]["key"]) == ({"budgetName": "etl-pipeline-monthly"}, "cost-spike#etl-pipeline-monthly")
    with pytest.raises(InvalidInput, match="not the pipeline's budget"):
        validate_input.validate("cost-spike", {"budgetName": "marketing"}, "arn:x", "2026-11-25T03:00:00.000Z")


class PagedLogs:
    """FilterLogEvents that always has another page of REPORT lines."""

    class exceptions:
        ResourceNotFoundException = KeyError

    def filter_log_events(self, **_: Any) -> dict[str, Any]:
        line = "REPORT RequestId: 1 Duration: 100.0 ms Billed Duration: 100 ms Memory Size: 1024 MB Max Memory Used: 200 MB"
        return {"events": [{"message": line}], "nextToken": "more"}


class Lambda:
    class exceptions:
        ResourceNotFoundException = KeyError

    @staticmethod
    def get_function_configuration(FunctionName: str) -> dict[str, Any]:
        return {"MemorySize": 1024, "Architectures": ["arm64"]}


def test_memory_is_not_resized_on_a_sample_of_the_report_lines() -> None:
    # GIVEN more REPORT lines than the playbook reads
    finding = cs.lambda_memory_finding(Lambda(), PagedLogs(), "transform-handler", CONFIG, datetime.now(UTC))
    # THEN the peak of the part it read is reported, and no change is proposed on it
    assert finding is not None and "action" not in finding
    assert f"Only the first {cs.MAX_REPORT_EVENTS} REPORT lines were read" in finding["evidence"]


class _S3Metrics:
    """A bucket's daily storage metrics as CloudWatch answers them: only those S3 has published so far."""

    def __init__(self, published: dict[str, float]):
        self.published = published

    def get_metric_statistics(self, **request: Any) -> dict[str, Any]:
        value = self.published.get(request["MetricName"])
        return {"Datapoints": [] if value is None else [{"Timestamp": request["StartTime"], "Maximum": value}]}


class _NoLifecycle:
    def get_bucket_lifecycle_configuration(self, **_: Any) -> dict[str, Any]:
        return {"Rules": []}


def test_tiering_is_not_priced_without_an_object_count() -> None:
    # GIVEN a 2,000 GB bucket whose object count S3 has not published yet (storage metrics come once a day)
    cloudwatch = _S3Metrics({"BucketSizeBytes": 2000 * cs.GB})
    # WHEN the playbook looks for a saving
    finding = cs.s3_tiering_finding(_NoLifecycle(), cloudwatch, "raw-data-bucket", CONFIG, datetime.now(UTC))
    # THEN it proposes nothing: Intelligent-Tiering's fee is per object, so the saving cannot be priced
    assert finding is not None and "action" not in finding and finding["monthlySaving"] == 0.0
    assert "no object count" in finding["evidence"]


def test_tiering_saving_is_less_the_monitoring_fee_per_object() -> None:
    cloudwatch = _S3Metrics({"BucketSizeBytes": 2000 * cs.GB, "NumberOfObjects": 400_000})
    finding = cs.s3_tiering_finding(_NoLifecycle(), cloudwatch, "raw-data-bucket", CONFIG, datetime.now(UTC))
    storage = 2000 * cs.S3_ASSUMED_COLD_SHARE * (cs.S3_STANDARD_GB_MONTH - cs.S3_INFREQUENT_TIER_GB_MONTH)
    assert finding is not None and finding["monthlySaving"] == round(storage - 400 * cs.S3_TIERING_MONITORING_PER_1000, 2)


class _Pages:
    def __init__(self, groups: list[dict[str, Any]]):
        self._groups = groups

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [{"logGroups": []}, {"logGroups": self._groups}]


class _Logs:
    def __init__(self, group: dict[str, Any]):
        self._group = group

    def get_paginator(self, name: str) -> _Pages:
        return _Pages([self._group])


def test_retention_under_an_account_level_policy_is_recommended_not_proposed() -> None:
    # GIVEN DescribeLogGroups answers the account-level policy's 90 days (PutRetentionPolicy would change nothing)
    group = {"logGroupName": "/aws/lambda/f", "retentionInDays": 90, "retentionPolicyName": "org-90", "storedBytes": 400 * cs.GB}
    finding = cs.log_retention_finding(_Logs(group), "/aws/lambda/f", {"logRetentionDays": 7}, datetime(2026, 1, 1, tzinfo=UTC))
    # THEN there is no action, and the recommendation names the policy
    assert finding is not None and "action" not in finding
    assert "account-level retention policy org-90" in finding["recommendation"]


class _Table:
    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {
            "Table": {
                "BillingModeSummary": {"BillingMode": "PROVISIONED"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 200, "WriteCapacityUnits": 100},
                "GlobalSecondaryIndexes": [
                    {"IndexName": "by-status", "ProvisionedThroughput": {"ReadCapacityUnits": 50, "WriteCapacityUnits": 40}}
                ],
            }
        }


class _NoUse:
    def get_metric_statistics(self, **_: Any) -> dict[str, Any]:
        return {"Datapoints": []}


def test_capacity_switch_rollback_gives_every_index_its_throughput_back() -> None:
    config = {"usageLookbackHours": 24}
    finding = cs.dynamodb_finding(_Table(), _NoUse(), "t", config, datetime(2026, 1, 1, tzinfo=UTC))
    assert finding is not None
    action = finding["action"]
    assert action["before"]["indexes"] == {"by-status": {"readCapacityUnits": 50, "writeCapacityUnits": 40}}
    assert action["rollback"]["parameters"]["GlobalSecondaryIndexUpdates"] == [
        {"Update": {"IndexName": "by-status", "ProvisionedThroughput": {"ReadCapacityUnits": 50, "WriteCapacityUnits": 40}}}
    ]
    assert "switching back to provisioned (the rollback) at any time" in action["description"]
