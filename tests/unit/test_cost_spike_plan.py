"""cost-spike's savings are priced from AWS's public list prices and only proposed above the savings floor, within the
pipeline's scope, never sizing memory below the observed peak plus headroom; each action records the before-state its
rollback restores, and the pre-check refuses a resource that changed since the plan.

The reads are stubbed at the helpers (REPORT lines, CloudWatch sums, lifecycle rules, the log group), so each test
states the usage and checks the price and the action the approver is asked to approve. Prices are written out here
(us-east-1 list prices) rather than read from the module, so a changed price is a failing test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from test_cost_spike_logic import COSTS, SCOPE, memory_finding

import cost_spike as cs
import validate_input

CONFIG = dict(validate_input.CONFIG_DEFAULTS)  # 24 h of usage, 30% headroom, 7 days of logs, a $1.00 floor
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
GB = 1024**3


class Lambda:
    class exceptions:
        ResourceNotFoundException = LookupError

    def __init__(self, configuration: dict[str, Any] | None) -> None:
        self.configuration = configuration

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        if not isinstance(FunctionName, str) or not FunctionName:
            # as botocore, which checks a request against the API model before sending it: FunctionName is a required string
            raise ParamValidationError(report=f"Invalid type for parameter FunctionName, value: {FunctionName!r}")
        if self.configuration is None:
            raise LookupError(FunctionName)
        return self.configuration


class Dynamodb:
    class exceptions:
        ResourceNotFoundException = LookupError

    def __init__(self, table: dict[str, Any] | None) -> None:
        self.table = table

    def describe_table(self, TableName: str) -> dict[str, Any]:
        assert TableName == "etl-metadata"
        if self.table is None:
            raise LookupError(TableName)
        return {"Table": self.table}


def usage(monkeypatch: pytest.MonkeyPatch, found: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def memory_usage(logs: Any, function_name: str, start: datetime, end: datetime) -> dict[str, Any] | None:
        calls.append((logs, function_name, start, end))
        return found

    monkeypatch.setattr(cs, "memory_usage", memory_usage)
    return calls


# ---------------------------------------------------------------------------------------------- Lambda memory
@pytest.mark.parametrize(
    ("peak", "headroom", "proposed"),
    [(200, 30, 320), (246, 30, 320), (247, 30, 384), (50, 30, 128), (98, 30, 128), (99, 30, 192), (320, 0, 320), (321, 0, 384)],
)
def test_proposed_memory_is_the_peak_plus_headroom_rounded_up_to_64_mb_and_at_least_128(peak: int, headroom: int, proposed: int) -> None:
    assert cs.proposed_memory(peak, headroom) == proposed


@pytest.mark.parametrize(("architectures", "price"), [(["x86_64"], 0.0000166667), (["arm64"], 0.0000133334), (None, 0.0000166667)])
def test_lower_memory_is_priced_per_gb_second_of_its_architecture(
    monkeypatch: pytest.MonkeyPatch, architectures: list[str] | None, price: float
) -> None:
    # GIVEN 36,000 billed seconds in the last 24 h at 1024 MB, peak 200 MB used (200 + 30% -> 320 MB)
    calls = usage(monkeypatch, {"peakMb": 200, "billedSeconds": 36_000.0, "invocations": 500, "complete": True})
    configuration: dict[str, Any] = {"MemorySize": 1024} | ({"Architectures": architectures} if architectures else {})
    finding = cs.lambda_memory_finding(Lambda(configuration), "logs", "transform-handler", CONFIG, NOW)
    # THEN the saving is the GB-seconds no longer paid for, over a 30-day month
    saving = round(36_000 * (1024 - 320) / 1024 * price * 30, 2)
    assert calls == [("logs", "transform-handler", NOW - timedelta(hours=24), NOW)]
    assert finding is not None
    assert finding == {
        "kind": "lambda-memory",
        "resource": "transform-handler",
        "evidence": "transform-handler: 1024 MB configured, peak 200 MB used over 500 invocations in the last 24 h (REPORT lines).",
        "monthlySaving": saving,
        "action": {
            "id": "lower_memory_transform_handler",
            "kind": "lambda-memory",
            "api": "lambda:UpdateFunctionConfiguration",
            "target": "transform-handler",
            "description": f"Lower transform-handler's memory from 1024 MB to 320 MB (peak used 200 MB + 30% headroom), "
            f"about {cs.money(saving)}/month.",
            "before": {"memorySize": 1024},
            "after": {"memorySize": 320},
            "rollback": {
                "api": "lambda:UpdateFunctionConfiguration",
                "parameters": {"FunctionName": "transform-handler", "MemorySize": 1024},
            },
            "monthlySaving": saving,
            "floorMb": 200,
        },
    }


def test_an_architecture_missing_from_the_price_list_is_priced_as_x86_64(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lambda answers x86_64 or arm64 today; a new one must not stop the plan (priced at the dearer x86_64 rate)
    usage(monkeypatch, {"peakMb": 200, "billedSeconds": 36_000.0, "invocations": 500, "complete": True})
    finding = cs.lambda_memory_finding(Lambda({"MemorySize": 1024, "Architectures": ["riscv64"]}), "logs", "f", CONFIG, NOW)
    assert finding is not None
    assert finding["action"]["after"] == {"memorySize": 320}
    assert finding["monthlySaving"] == round(36_000 * (1024 - 320) / 1024 * 0.0000166667 * 30, 2)


def test_the_usage_window_scales_the_saving_to_a_month(monkeypatch: pytest.MonkeyPatch) -> None:
    usage(monkeypatch, {"peakMb": 200, "billedSeconds": 36_000.0, "invocations": 500, "complete": True})
    config = CONFIG | {"usageLookbackHours": 48}
    finding = cs.lambda_memory_finding(Lambda({"MemorySize": 1024}), "logs", "f", config, NOW)
    assert finding is not None
    assert finding["monthlySaving"] == round(36_000 * (1024 - 320) / 1024 * 0.0000166667 * 15, 2)
    assert "in the last 48 h" in finding["evidence"]


def test_memory_already_at_the_proposed_size_is_reported_not_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    usage(monkeypatch, {"peakMb": 200, "billedSeconds": 36_000.0, "invocations": 500, "complete": True})
    finding = cs.lambda_memory_finding(Lambda({"MemorySize": 320}), "logs", "f", CONFIG, NOW)
    assert finding == {
        "kind": "lambda-memory",
        "resource": "f",
        "evidence": "f: 320 MB configured, peak 200 MB used over 500 invocations in the last 24 h (REPORT lines).",
        "monthlySaving": 0.0,
    }
    larger = cs.lambda_memory_finding(Lambda({"MemorySize": 384}), "logs", "f", CONFIG, NOW)
    assert larger is not None and larger["action"]["after"] == {"memorySize": 320}


def test_a_sample_of_the_report_lines_is_reported_never_resized(monkeypatch: pytest.MonkeyPatch) -> None:
    usage(monkeypatch, {"peakMb": 200, "billedSeconds": 36_000.0, "invocations": 10_000, "complete": False})
    finding = cs.lambda_memory_finding(Lambda({"MemorySize": 1024}), "logs", "f", CONFIG, NOW)
    assert finding == {
        "kind": "lambda-memory",
        "resource": "f",
        "evidence": "f: 1024 MB configured, peak 200 MB used over 10000 invocations in the last 24 h (REPORT lines). "
        "Only the first 10000 REPORT lines were read; not resized.",
        "monthlySaving": 0.0,
    }


def test_a_missing_function_or_one_without_report_lines_is_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    usage(monkeypatch, None)
    assert cs.lambda_memory_finding(Lambda(None), "logs", "f", CONFIG, NOW) is None
    assert cs.lambda_memory_finding(Lambda({"MemorySize": 1024}), "logs", "f", CONFIG, NOW) is None


# ---------------------------------------------------------------------------------------------- DynamoDB capacity
def consumed(monkeypatch: pytest.MonkeyPatch, reads: float, writes: float) -> None:
    sums = {"ConsumedReadCapacityUnits": reads, "ConsumedWriteCapacityUnits": writes}

    def metric_sum(cloudwatch: Any, namespace: str, metric: str, dimensions: dict[str, str], start: datetime, end: datetime) -> float:
        assert (cloudwatch, namespace, dimensions, start, end) == (
            "cw",
            "AWS/DynamoDB",
            {"TableName": "etl-metadata"},
            NOW - timedelta(hours=24),
            NOW,
        )
        return sums[metric]

    monkeypatch.setattr(cs, "_metric_sum", metric_sum)


def provisioned(rcu: int, wcu: int, mode: str | None = None) -> dict[str, Any]:
    table: dict[str, Any] = {"ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}}
    return table | ({"BillingModeSummary": {"BillingMode": mode}} if mode else {})


def test_an_idle_provisioned_table_is_switched_to_on_demand_priced_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 100 RCU / 50 WCU provisioned, and 864,000 reads and 86,400 writes consumed in 24 h (10% and 2% of capacity)
    consumed(monkeypatch, 864_000, 86_400)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(100, 50, "PROVISIONED")), "cw", "etl-metadata", CONFIG, NOW)
    monthly_provisioned = (100 * 0.00013 + 50 * 0.00065) * 730
    monthly_on_demand = (864_000 * 0.125 / 1e6 + 86_400 * 0.625 / 1e6) * 30
    saving = round(monthly_provisioned - monthly_on_demand, 2)
    assert finding is not None
    assert {key: finding[key] for key in ("kind", "resource")} == {"kind": "dynamodb-capacity", "resource": "etl-metadata"}
    assert set(finding) == {"kind", "resource", "evidence", "monthlySaving", "action"}
    assert finding["evidence"] == (
        f"etl-metadata: provisioned 100 RCU / 50 WCU ({cs.money(monthly_provisioned)}/month); average use 10.0% of reads and "
        f"2.0% of writes over the last 24 h; on demand would cost about {cs.money(monthly_on_demand)}/month."
    )
    assert finding["monthlySaving"] == saving
    assert finding["action"] == {
        "id": "switch_to_on_demand_etl_metadata",
        "kind": "dynamodb-capacity",
        "api": "dynamodb:UpdateTable",
        "target": "etl-metadata",
        "description": f"Switch etl-metadata from provisioned (100 RCU / 50 WCU) to on-demand capacity, about {cs.money(saving)}/month. "
        "The switch takes several minutes; AWS allows a table 4 switches to on-demand in any 24 hours, "
        "and switching back to provisioned (the rollback) at any time.",
        "before": {"billingMode": "PROVISIONED", "readCapacityUnits": 100, "writeCapacityUnits": 50},
        "after": {"billingMode": "PAY_PER_REQUEST"},
        "rollback": {
            "api": "dynamodb:UpdateTable",
            "parameters": {
                "TableName": "etl-metadata",
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": 100, "WriteCapacityUnits": 50},
            },
        },
        "monthlySaving": saving,
    }


@pytest.mark.parametrize(
    ("rcu", "wcu", "reads", "writes"),
    [
        (100, 50, 100 * 86_400 * 0.3, 0),  # reads at 30% of capacity
        (100, 50, 0, 50 * 86_400 * 0.3),  # writes at 30%
        (1, 0, 864_000 * 100, 0),  # on demand would cost more than 1 RCU
    ],
)
def test_a_used_table_or_one_cheaper_provisioned_is_reported_not_switched(
    monkeypatch: pytest.MonkeyPatch, rcu: int, wcu: int, reads: float, writes: float
) -> None:
    consumed(monkeypatch, reads, writes)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(rcu, wcu)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and "action" not in finding and finding["monthlySaving"] == 0.0
    assert finding["kind"] == "dynamodb-capacity" and finding["resource"] == "etl-metadata"
    assert finding["evidence"].startswith(f"etl-metadata: provisioned {rcu} RCU / {wcu} WCU")


def test_read_only_capacity_is_judged_by_its_reads_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    consumed(monkeypatch, 86_400, 0)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(100, 0)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and finding["action"]["before"]["writeCapacityUnits"] == 0
    assert "average use 1.0% of reads and 0.0% of writes" in finding["evidence"]


def test_a_table_without_a_billing_mode_summary_is_provisioned(monkeypatch: pytest.MonkeyPatch) -> None:
    consumed(monkeypatch, 0, 0)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(100, 50)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and finding["action"]["after"] == {"billingMode": "PAY_PER_REQUEST"}


def test_a_saving_under_a_dollar_is_still_priced_and_one_of_nothing_is_not_proposed(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 RCU idle: about $0.09 a month; the plan's floor, not the finding, decides whether that is worth proposing
    consumed(monkeypatch, 0, 0)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(1, 0)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == round(0.00013 * 730, 2) and "action" in finding
    # AND with provisioned and on-demand priced the same, nothing is saved and nothing proposed
    monkeypatch.setattr(cs, "DYNAMODB_RCU_HOUR", 0.0)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(1, 0)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and "action" not in finding and finding["monthlySaving"] == 0.0


def test_write_only_capacity_is_priced_without_dividing_by_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    consumed(monkeypatch, 0, 8_640)
    finding = cs.dynamodb_finding(Dynamodb(provisioned(0, 50)), "cw", "etl-metadata", CONFIG, NOW)
    assert finding is not None and finding["action"]["before"]["readCapacityUnits"] == 0
    assert "average use 0.0% of reads and 0.2% of writes" in finding["evidence"]


def test_an_idle_table_is_priced_with_its_indexes_capacity_and_the_switch_names_each_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 100 RCU / 50 WCU on the table and two provisioned global secondary indexes, nothing consumed
    consumed(monkeypatch, 0, 0)
    table = provisioned(100, 50, "PROVISIONED") | {
        "GlobalSecondaryIndexes": [
            {"IndexName": "by-status", "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 10}},
            {"IndexName": "by-date", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 4}},
        ]
    }
    finding = cs.dynamodb_finding(Dynamodb(table), "cw", "etl-metadata", CONFIG, NOW)
    # THEN every index's capacity is paid for too (DynamoDB bills provisioned indexes like tables), and saved by the switch
    saving = round(((100 + 20 + 5) * 0.00013 + (50 + 10 + 4) * 0.00065) * 730, 2)
    assert finding is not None
    assert finding["monthlySaving"] == saving
    assert finding["action"]["description"].startswith(
        "Switch etl-metadata from provisioned (100 RCU / 50 WCU; index by-status 20 / 10; index by-date 5 / 4) to on-demand "
        f"capacity, about {cs.money(saving)}/month."
    )


@pytest.mark.parametrize("table", [None, provisioned(100, 50, "PAY_PER_REQUEST"), provisioned(0, 0), {}])
def test_missing_on_demand_or_capacity_less_tables_are_no_finding(monkeypatch: pytest.MonkeyPatch, table: dict[str, Any] | None) -> None:
    consumed(monkeypatch, 0, 0)
    assert cs.dynamodb_finding(Dynamodb(table), "cw", "etl-metadata", CONFIG, NOW) is None


# ---------------------------------------------------------------------------------------------- S3 Intelligent-Tiering
def bucket(monkeypatch: pytest.MonkeyPatch, rules: list[dict[str, Any]] | Exception, size: float, objects: int | None) -> None:
    def lifecycle_rules(s3: Any, name: str) -> list[dict[str, Any]]:
        assert (s3, name) == ("s3", "raw-data-bucket")
        if isinstance(rules, Exception):
            raise rules
        return rules

    def size_of(cloudwatch: Any, name: str, now: datetime) -> float:
        assert (cloudwatch, name, now) == ("cw", "raw-data-bucket", NOW)
        return size

    def count_of(cloudwatch: Any, name: str, now: datetime) -> int | None:
        assert (cloudwatch, name, now) == ("cw", "raw-data-bucket", NOW)
        return objects

    monkeypatch.setattr(cs, "lifecycle_rules", lifecycle_rules)
    monkeypatch.setattr(cs, "bucket_size_bytes", size_of)
    monkeypatch.setattr(cs, "bucket_object_count", count_of)


def test_a_bucket_without_a_published_object_count_is_reported_never_tiered(monkeypatch: pytest.MonkeyPatch) -> None:
    # S3 publishes NumberOfObjects once a day: a new bucket has none yet, and the per-object fee cannot be priced
    bucket(monkeypatch, [], 2048 * GB, None)
    assert cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW) == {
        "kind": "s3-tiering",
        "resource": "raw-data-bucket",
        "evidence": "raw-data-bucket: 2,048.0 GB in S3 Standard, but S3 has published no object count yet, so "
        "Intelligent-Tiering's monitoring fee cannot be priced.",
        "monthlySaving": 0.0,
    }


EXPIRE = {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
TIERING = {
    "ID": "etl-playbooks-intelligent-tiering",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
}


@pytest.mark.parametrize("rules", [[], [EXPIRE]])
def test_tiering_is_priced_with_its_monitoring_fee_and_keeps_the_buckets_rules(
    monkeypatch: pytest.MonkeyPatch, rules: list[dict[str, Any]]
) -> None:
    # GIVEN 10,000 GB in 10,000,000 objects: 40% assumed cold saves (0.023 - 0.0125) per GB, less 0.0025 per 1,000 objects
    bucket(monkeypatch, rules, 10_000 * GB, 10_000_000)
    finding = cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)
    storage = 10_000 * 0.4 * (0.023 - 0.0125)
    monitoring = 10_000 * 0.0025
    saving = round(storage - monitoring, 2)
    assert finding is not None
    assert {key: finding[key] for key in ("kind", "resource")} == {"kind": "s3-tiering", "resource": "raw-data-bucket"}
    assert set(finding) == {"kind", "resource", "evidence", "monthlySaving", "action"}
    assert finding["evidence"] == (
        "raw-data-bucket: 10,000.0 GB and 10,000,000 objects in S3 Standard; no lifecycle rule moves them to Intelligent-Tiering."
    )
    assert finding["monthlySaving"] == saving
    rollback = (
        {
            "api": "s3:PutBucketLifecycleConfiguration",
            "parameters": {"Bucket": "raw-data-bucket", "LifecycleConfiguration": {"Rules": rules}},
        }
        if rules
        else {"api": "s3:DeleteBucketLifecycle", "parameters": {"Bucket": "raw-data-bucket"}}
    )
    assert finding["action"] == {
        "id": "enable_intelligent_tiering_raw_data_bucket",
        "kind": "s3-tiering",
        "api": "s3:PutBucketLifecycleConfiguration",
        "target": "raw-data-bucket",
        "description": f"Add lifecycle rule etl-playbooks-intelligent-tiering to raw-data-bucket, moving its objects to S3 "
        f"Intelligent-Tiering ({len(rules)} existing rule(s) kept): about {cs.money(saving)}/month if 40% of the data goes "
        f"unread for 30 days ({cs.money(storage)} storage less {cs.money(monitoring)} monitoring), after a one-time "
        f"{cs.money(10_000 * 0.01)} for the transitions.",
        "before": {"lifecycleRules": rules},
        "after": {"rules": [*rules, TIERING]},
        "rollback": rollback,
        "monthlySaving": saving,
    }


def test_tiering_whose_fees_exceed_the_saving_is_reported_not_proposed(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 GB in 1,000,000 small objects: $0.0042 saved, $2.50 of monitoring
    bucket(monkeypatch, [], 1 * GB, 1_000_000)
    finding = cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)
    assert finding == {
        "kind": "s3-tiering",
        "resource": "raw-data-bucket",
        "evidence": "raw-data-bucket: 1.0 GB and 1,000,000 objects in S3 Standard; no lifecycle rule moves them to "
        "Intelligent-Tiering. Its fees would exceed the saving.",
        "monthlySaving": 0.0,
    }
    # AND a saving under a dollar is priced and proposed (the plan's floor judges it), one of exactly nothing is not
    bucket(monkeypatch, [], 100 * GB, 0)
    finding = cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == round(100 * 0.4 * 0.0105, 2) == 0.42 and "action" in finding
    bucket(monkeypatch, [], 333 * GB, 0)
    finding = cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == finding["action"]["monthlySaving"] == 1.4  # 1.3986, in cents
    bucket(monkeypatch, [], 0, 0)
    finding = cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)
    assert finding is not None and "action" not in finding


def test_a_bucket_already_tiering_or_gone_is_no_finding_and_other_errors_surface(monkeypatch: pytest.MonkeyPatch) -> None:
    disabled = TIERING | {"Status": "Disabled"}
    bucket(monkeypatch, [EXPIRE, TIERING], 1000 * GB, 1)
    assert cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW) is None
    bucket(monkeypatch, [disabled], 1000 * GB, 1)
    assert cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW) is not None
    bucket(monkeypatch, ClientError({"Error": {"Code": "NoSuchBucket"}}, "GetBucketLifecycleConfiguration"), 0, 0)
    assert cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW) is None
    bucket(monkeypatch, ClientError({"Error": {"Code": "AccessDenied"}}, "GetBucketLifecycleConfiguration"), 0, 0)
    with pytest.raises(ClientError):
        cs.s3_tiering_finding("s3", "cw", "raw-data-bucket", CONFIG, NOW)


# ---------------------------------------------------------------------------------------------- log retention
def group(monkeypatch: pytest.MonkeyPatch, found: dict[str, Any] | None) -> None:
    def log_group(logs: Any, name: str) -> dict[str, Any] | None:
        assert (logs, name) == ("logs", "/aws/lambda/ingest-handler")
        return found

    monkeypatch.setattr(cs, "log_group", log_group)


def created_days_ago(days: int) -> int:
    return int((NOW - timedelta(days=days)).timestamp() * 1000)


@pytest.mark.parametrize(
    ("retention", "age", "kept", "rollback"),
    [
        (None, 70, 70, {"api": "logs:DeleteRetentionPolicy", "parameters": {"logGroupName": "/aws/lambda/ingest-handler"}}),
        (
            30,
            70,
            30,
            {"api": "logs:PutRetentionPolicy", "parameters": {"logGroupName": "/aws/lambda/ingest-handler", "retentionInDays": 30}},
        ),
        (
            90,
            70,
            70,
            {"api": "logs:PutRetentionPolicy", "parameters": {"logGroupName": "/aws/lambda/ingest-handler", "retentionInDays": 90}},
        ),
    ],
)
def test_retention_is_shortened_priced_on_the_days_of_logs_it_drops(
    monkeypatch: pytest.MonkeyPatch, retention: int | None, age: int, kept: int, rollback: dict[str, Any]
) -> None:
    # GIVEN 100 GB stored, kept `kept` days (its retention, or its age if younger); 7 days keep 7/kept of it
    found: dict[str, Any] = {"logGroupName": "/aws/lambda/ingest-handler", "storedBytes": 100 * GB, "creationTime": created_days_ago(age)}
    group(monkeypatch, found | ({"retentionInDays": retention} if retention else {}))
    finding = cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW)
    saving = round(100 * 0.03 * (1 - 7 / kept), 2)
    current = f"{retention} days" if retention else "never expire"
    assert finding == {
        "kind": "log-retention",
        "resource": "/aws/lambda/ingest-handler",
        "evidence": f"/aws/lambda/ingest-handler: retention {current}, 100.0 GB stored.",
        "monthlySaving": saving,
        "action": {
            "id": "set_log_retention_aws_lambda_ingest_handler",
            "kind": "log-retention",
            "api": "logs:PutRetentionPolicy",
            "target": "/aws/lambda/ingest-handler",
            "description": f"Set retention of /aws/lambda/ingest-handler from {current} to 7 days, about {cs.money(saving)}/month.",
            "before": {"retentionInDays": retention},
            "after": {"retentionInDays": 7},
            "rollback": rollback,
            "monthlySaving": saving,
        },
    }


def test_retention_under_an_account_level_policy_is_a_recommendation_never_an_action(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN DescribeLogGroups answers the account-level policy's 30 days (PutRetentionPolicy would change nothing)
    found = {
        "logGroupName": "/aws/lambda/ingest-handler",
        "retentionInDays": 30,
        "retentionPolicyName": "org-logs-30",
        "storedBytes": 100 * GB,
        "creationTime": created_days_ago(400),
    }
    group(monkeypatch, found)
    saving = round(100 * 0.03 * (1 - 7 / 30), 2)
    assert cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW) == {
        "kind": "log-retention",
        "resource": "/aws/lambda/ingest-handler",
        "evidence": "/aws/lambda/ingest-handler: retention 30 days, 100.0 GB stored. The retention comes from the account-level "
        "retention policy org-logs-30, which overrides the log group's own setting.",
        "monthlySaving": 0.0,
        "recommendation": "/aws/lambda/ingest-handler keeps logs 30 days because of the account-level retention policy "
        "org-logs-30; setting the group's own retention would change nothing. Ask the account's CloudWatch Logs "
        "administrator to narrow org-logs-30's selection so it no longer covers the group (an account-level policy keeps "
        f"at least 30 days), then run cost-spike again to set 7 days (about {cs.money(saving)}/month).",
    }


def test_retention_saving_in_cents(monkeypatch: pytest.MonkeyPatch) -> None:
    # 33 GB kept 30 days, 7 wanted: 0.759 a month, shown and summed as cents
    found = {
        "logGroupName": "/aws/lambda/ingest-handler",
        "storedBytes": 33 * GB,
        "creationTime": created_days_ago(70),
        "retentionInDays": 30,
    }
    group(monkeypatch, found)
    finding = cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == finding["action"]["monthlySaving"] == 0.76


def test_a_group_that_reports_no_size_or_creation_time_saves_nothing_and_is_still_shortened(monkeypatch: pytest.MonkeyPatch) -> None:
    group(monkeypatch, {"logGroupName": "/aws/lambda/ingest-handler"})
    finding = cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == 0.0
    assert finding["evidence"] == "/aws/lambda/ingest-handler: retention never expire, 0.0 GB stored."
    assert finding["action"]["after"] == {"retentionInDays": 7}


def test_a_young_group_is_priced_as_if_kept_the_wanted_days_and_saves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    group(monkeypatch, {"logGroupName": "/aws/lambda/ingest-handler", "storedBytes": 100 * GB, "creationTime": created_days_ago(2)})
    finding = cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW)
    assert finding is not None and finding["monthlySaving"] == 0.0
    assert finding["action"]["after"] == {"retentionInDays": 7}


@pytest.mark.parametrize(
    "found",
    [
        None,
        {"logGroupName": "/aws/lambda/ingest-handler", "retentionInDays": 7},
        {"logGroupName": "/aws/lambda/ingest-handler", "retentionInDays": 3},
    ],
)
def test_a_missing_group_or_one_kept_no_longer_than_wanted_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, found: dict[str, Any] | None
) -> None:
    group(monkeypatch, found)
    assert cs.log_retention_finding("logs", "/aws/lambda/ingest-handler", CONFIG, NOW) is None


# ---------------------------------------------------------------------------------------------- scope and plan
@pytest.mark.parametrize(
    ("kind", "target", "inside"),
    [
        ("lambda-memory", "ingest-handler", True),
        ("lambda-memory", "etl-metadata", False),
        ("dynamodb-capacity", "etl-metadata", True),
        ("dynamodb-capacity", "ingest-handler", False),
        ("s3-tiering", "raw-data-bucket", True),
        ("s3-tiering", "etl-metadata", False),
        ("log-retention", "/aws/lambda/ingest-handler", True),
        ("log-retention", "raw-data-bucket", False),
        ("runaway-executions", "etl-workflow", False),
    ],
)
def test_only_the_pipelines_own_resources_of_each_kind_are_in_scope(kind: str, target: str, inside: bool) -> None:
    assert cs.in_scope({"kind": kind, "target": target}, SCOPE) is inside


@pytest.mark.parametrize(("saving", "proposed"), [(0.99, False), (1.0, True), (1.01, True)])
def test_the_savings_floor_is_inclusive(saving: float, proposed: bool) -> None:
    plan = cs.plan(COSTS, [memory_finding("transform-handler", 448, 301, saving=saving)], SCOPE, CONFIG)
    assert bool(plan["actions"]) is proposed


@pytest.mark.parametrize(("after", "floor", "refused"), [(390, 301, True), (391, 301, True), (392, 301, False), (390, 300, False)])
def test_the_memory_floor_is_the_peak_plus_headroom_exactly(after: int, floor: int, refused: bool) -> None:
    # 301 MB peak + 30% = 391.3 MB; 300 MB + 30% = 390 MB, which may be proposed
    finding = memory_finding("transform-handler", after, floor)
    if refused:
        with pytest.raises(ValueError, match="refusing to size transform-handler below its observed peak plus headroom"):
            cs.plan(COSTS, [finding], SCOPE, CONFIG)
    else:
        assert cs.plan(COSTS, [finding], SCOPE, CONFIG)["actions"] == [finding["action"]]


def test_the_floor_guard_applies_to_memory_actions_only() -> None:
    finding = memory_finding("etl-metadata", 1, 301)
    finding["action"]["kind"] = "dynamodb-capacity"
    assert cs.plan(COSTS, [finding], SCOPE, CONFIG)["actions"] == [finding["action"]]


def test_a_plan_with_savings_totals_them_and_keeps_every_recommendation() -> None:
    first = memory_finding("transform-handler", 448, 301, saving=20.0)
    second = memory_finding("ingest-handler", 448, 301, saving=5.5)
    runaway = {
        "kind": "runaway-executions",
        "resource": "etl-workflow",
        "evidence": "480/min",
        "monthlySaving": 0.0,
        "recommendation": "run event-loop",
    }
    plan = cs.plan(COSTS | {"costPerFile": 0.0125, "processedFiles": 8000}, [first, second, runaway], SCOPE, CONFIG)
    follow_up = (
        "Follow-up: re-check in 7 days (run cost-spike again, or Cost Explorer) and compare the cost per processed file "
        "with today's baseline of $0.0125 per processed file (8000 files in 2 days)."
    )
    assert plan == {
        "case": "savings",
        "summary": "2 savings found in the pipeline, about $25.50/month in total (cost over the last 2 days: $100.00). Approve any subset.",
        "actions": [first["action"], second["action"]],
        "evidence": [
            "Cost 2026-11-23 to 2026-11-25 (Cost Explorer, BlendedCost): $100.00 USD.",
            "Top contributors: AWS Lambda $80.00 (80.0%), Amazon DynamoDB $20.00 (20.0%).",
            "Daily cost: 2026-11-23 $30.00, 2026-11-24 $70.00.",
            "transform-handler sized",
            "ingest-handler sized",
            "480/min",
        ],
        "recommendations": ["run event-loop", *cs.RECOMMENDATIONS, follow_up],
        "costs": plan["costs"],
        "estimatedMonthlySaving": 25.5,
    }


def test_the_total_saving_is_in_cents() -> None:
    findings = [memory_finding("transform-handler", 448, 301, saving=1.333), memory_finding("ingest-handler", 448, 301, saving=2.111)]
    assert cs.plan(COSTS, findings, SCOPE, CONFIG)["estimatedMonthlySaving"] == 3.44


def test_a_plan_without_savings_proposes_nothing_and_names_the_cost() -> None:
    plan = cs.plan(COSTS, [], SCOPE, CONFIG)
    assert plan == {
        "case": "nothing-to-change",
        "summary": "No savings to apply in the pipeline; it cost $100.00 over the last 2 days.",
        "actions": [],
        "evidence": plan["evidence"],
        "recommendations": [
            "Follow-up: re-check in 7 days (run cost-spike again, or Cost Explorer) and compare the cost per processed file "
            "with today's baseline of $100.00 over 2 days."
        ],
        "costs": COSTS,
        "estimatedMonthlySaving": 0.0,
    }
    assert cs.plan(COSTS | {"top": []}, [], SCOPE, CONFIG)["evidence"][1] == "Top contributors: no cost recorded."


# ---------------------------------------------------------------------------------------------- the pre-check
@pytest.mark.parametrize(
    ("current", "as_planned"),
    [
        ({"memorySize": 1024, "lastUpdateStatus": "Successful"}, True),
        ({"memorySize": 1536, "lastUpdateStatus": "Successful"}, False),
        ({"memorySize": 1024, "lastUpdateStatus": "InProgress"}, False),
    ],
)
def test_a_function_resized_or_updating_since_the_plan_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, current: dict[str, Any], as_planned: bool
) -> None:
    action = memory_finding("transform-handler", 448, 301)["action"]
    clients = {"lambda": "client"}
    monkeypatch.setattr(cs, "current_value", lambda given, planned: current if (given, planned) == (clients, action) else {})
    assert cs.still_as_planned(clients, action) == {"asPlanned": as_planned, "current": current}


@pytest.mark.parametrize(
    ("current", "as_planned"),
    [
        ({"billingMode": "PROVISIONED", "tableStatus": "ACTIVE"}, True),
        ({"billingMode": "PAY_PER_REQUEST", "tableStatus": "ACTIVE"}, False),
        ({"billingMode": "PROVISIONED", "tableStatus": "UPDATING"}, False),
    ],
)
def test_a_table_switched_or_updating_since_the_plan_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, current: dict[str, Any], as_planned: bool
) -> None:
    # DynamoDB refuses an UpdateTable while the table is UPDATING; one switched since the plan is not ours to switch
    action = {
        "kind": "dynamodb-capacity",
        "target": "etl-metadata",
        "before": {"billingMode": "PROVISIONED", "readCapacityUnits": 100, "writeCapacityUnits": 50},
    }
    clients = {"dynamodb": "client"}
    monkeypatch.setattr(cs, "current_value", lambda given, planned: current if (given, planned) == (clients, action) else {})
    assert cs.still_as_planned(clients, action) == {"asPlanned": as_planned, "current": current}


@pytest.mark.parametrize(("rules", "as_planned"), [([EXPIRE], True), ([], False), ([EXPIRE, TIERING], False)])
def test_lifecycle_rules_changed_since_the_plan_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, rules: list[dict[str, Any]], as_planned: bool
) -> None:
    action = {"kind": "s3-tiering", "target": "raw-data-bucket", "before": {"lifecycleRules": [EXPIRE]}}
    clients = {"s3": "client"}
    monkeypatch.setattr(
        cs, "current_value", lambda given, planned: {"lifecycleRules": rules} if (given, planned) == (clients, action) else {}
    )
    assert cs.still_as_planned(clients, action) == {"asPlanned": as_planned, "current": {"lifecycleRules": rules}}


@pytest.mark.parametrize(
    ("current", "as_planned"),
    [({"retentionInDays": None}, True), ({"retentionInDays": 14}, False), ({"billingMode": "PROVISIONED"}, True)],
)
def test_other_resources_compare_what_the_plan_recorded_before(
    monkeypatch: pytest.MonkeyPatch, current: dict[str, Any], as_planned: bool
) -> None:
    action = {"kind": "log-retention", "target": "/aws/lambda/ingest-handler", "before": {"retentionInDays": None}}
    monkeypatch.setattr(cs, "current_value", lambda clients, planned: current)
    assert cs.still_as_planned({}, action) == {"asPlanned": as_planned, "current": current}
