"""Cost spike playbook (runbook "Cost Spike (Budget Alert)"): the cost table, savings findings, the plan, verification.

The changes themselves are direct AWS SDK tasks in the state machine (one per approved action, in a Map); this module
holds what needs logic: Cost Explorer pages, the sizing and savings estimates, the plan and the check that the new
configurations are in place. Only the pipeline's own resources (names from the template's parameters) are examined
or proposed for change.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shared import clock, metrics
from shared.aws import client

logger = Logger()

# Public on-demand list prices (USD, us-east-1) used for estimates; the report calls them estimates.
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
DYNAMODB_RCU_HOUR = 0.00013
DYNAMODB_WCU_HOUR = 0.00065
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1_000_000
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1_000_000
S3_STANDARD_GB_MONTH = 0.023
S3_INFREQUENT_TIER_GB_MONTH = 0.0125
# S3 Intelligent-Tiering's monitoring and automation fee, per 1,000 objects of 128 KB or more a month, and the
# lifecycle transition requests into it, per 1,000 objects, once (us-east-1 prices).
S3_TIERING_MONITORING_PER_1000 = 0.0025
S3_TIERING_TRANSITION_PER_1000 = 0.01
# Intelligent-Tiering estimate: the share of a bucket's bytes assumed not read for 30 days (stated in the action).
S3_ASSUMED_COLD_SHARE = 0.4
LOGS_STORED_GB_MONTH = 0.03
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30
GB = 1024**3

# DynamoDB's switching limit ("Considerations when switching capacity modes"): to on-demand at most this often a day.
ON_DEMAND_SWITCHES_PER_DAY = 4
MEMORY_STEP_MB = 64
MIN_MEMORY_MB = 128
# A bound on REPORT lines read, not on pages: AWS chooses the page size and may answer small or empty pages. The page
# bound only stops a listing that never ends.
MAX_REPORT_EVENTS = 10_000
MAX_REPORT_PAGES = 10_000
UNDERUSED_UTILISATION = 0.3
# The lifecycle rule the playbook adds: every object moves to the INTELLIGENT_TIERING storage class, where S3 moves
# what is not read for 30 days to its cheaper tiers. (An Intelligent-Tiering *configuration* alone moves nothing: it only
# adds archive tiers for objects already in that class.)
TIERING_RULE_ID = "etl-playbooks-intelligent-tiering"
TIERING_RULE = {
    "ID": TIERING_RULE_ID,
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
}
REPORT_LINE = re.compile(r"Billed Duration: (?P<billed>\d+(?:\.\d+)?) ms.*?Max Memory Used: (?P<used>\d+) MB")
SLUG = re.compile(r"[^a-z0-9]+")

RECOMMENDATIONS = [
    "Check Cost Explorer daily for the next 7 days; the trend should decline.",
    "Update the budget forecast from the new baseline once the 7 days have passed.",
    "Confirm the pipeline's performance SLAs still hold after the changes (duration of the resized functions).",
]


def scope_from_env() -> dict[str, list[str]]:
    """The pipeline's resources, from the template's parameters: nothing else is examined or changed."""

    def names(variable: str) -> list[str]:
        return [name for name in os.environ.get(variable, "").split(",") if name]

    return {
        "functions": names("PIPELINE_FUNCTIONS"),
        "tables": names("PIPELINE_TABLES"),
        "buckets": names("PIPELINE_BUCKETS"),
        "logGroups": names("PIPELINE_LOG_GROUPS"),
    }


def slug(name: str) -> str:
    return SLUG.sub("_", name.lower()).strip("_")


def money(amount: float) -> str:
    return f"${amount:,.2f}"


# ------------------------------------------------------------------------------------------------ cost table
def cost_by_service(ce: Any, start: str, end: str) -> list[dict[str, Any]]:
    """The runbook's `ce get-cost-and-usage` (daily BlendedCost by SERVICE), every page."""
    results: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": "DAILY",
        "Metrics": ["BlendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    while True:
        page = ce.get_cost_and_usage(**request)
        results += page.get("ResultsByTime", [])
        if not page.get("NextPageToken"):
            return results
        request["NextPageToken"] = page["NextPageToken"]


def cost_table(results: list[dict[str, Any]], top: int = 5) -> dict[str, Any]:
    services: dict[str, float] = {}
    daily = []
    unit = "USD"
    for day in results:
        total = 0.0
        for group in day.get("Groups", []):
            metric = group["Metrics"]["BlendedCost"]
            amount = float(metric["Amount"])
            unit = metric.get("Unit", unit)
            services[group["Keys"][0]] = services.get(group["Keys"][0], 0.0) + amount
            total += amount
        daily.append({"date": day["TimePeriod"]["Start"], "amount": round(total, 2)})
    grand = sum(services.values())
    ranked = sorted(services.items(), key=lambda item: -item[1])
    rows = [
        {"service": name, "amount": round(amount, 2), "share": round(amount / grand * 100, 1) if grand else 0.0} for name, amount in ranked
    ]
    return {"unit": unit, "total": round(grand, 2), "daily": daily, "services": rows, "top": rows[:top]}


def processed_files(cloudwatch: Any, state_machine_arn: str, start: datetime, end: datetime) -> int | None:
    """Files the pipeline processed in the window (its workflow's successful executions), for cost per file."""
    if not state_machine_arn:
        return None
    points = metrics.datapoints(cloudwatch, "AWS/States", "ExecutionsSucceeded", {"StateMachineArn": state_machine_arn}, start, end, 86400)
    return int(sum(point["Sum"] for point in points)) if points else None


def measure_costs(ce: Any, cloudwatch: Any, state_machine_arn: str, days: int, now: datetime) -> dict[str, Any]:
    end = now.date()
    start = end - timedelta(days=days)
    table = cost_table(cost_by_service(ce, start.isoformat(), end.isoformat()))
    files = processed_files(cloudwatch, state_machine_arn, now - timedelta(days=days), now)
    table["window"] = {"start": start.isoformat(), "end": end.isoformat(), "days": days}
    table["processedFiles"] = files
    table["costPerFile"] = round(table["total"] / files, 6) if files else None
    return table


# ------------------------------------------------------------------------------------------------ findings
def memory_usage(logs: Any, function_name: str, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Peak memory used and billed seconds from the function's REPORT lines (None when there are none).

    `complete` is False when there were more than MAX_REPORT_EVENTS lines: the peak is then a sample's.
    """
    request: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function_name}",
        "startTime": int(start.timestamp() * 1000),
        "endTime": int(end.timestamp() * 1000),
        "filterPattern": '"REPORT RequestId"',
    }
    peak, billed_ms, count, pages = 0, 0.0, 0, 0
    try:
        while True:
            page = logs.filter_log_events(**request)
            pages += 1
            for event in page.get("events", []):
                match = REPORT_LINE.search(event["message"])
                if match:
                    peak = max(peak, int(match["used"]))
                    billed_ms += float(match["billed"])
                    count += 1
            if not page.get("nextToken") or count >= MAX_REPORT_EVENTS or pages == MAX_REPORT_PAGES:
                break
            request["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return None
    if not count:
        return None
    return {"peakMb": peak, "billedSeconds": billed_ms / 1000, "invocations": count, "complete": not page.get("nextToken")}


def proposed_memory(peak_mb: int, headroom_percent: int) -> int:
    """Peak used plus headroom, rounded up to a 64 MB step; never below the observed peak plus headroom."""
    wanted = peak_mb * (1 + headroom_percent / 100)
    return max(MIN_MEMORY_MB, math.ceil(wanted / MEMORY_STEP_MB) * MEMORY_STEP_MB)


def lambda_memory_finding(lam: Any, logs: Any, function_name: str, config: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    hours = config["usageLookbackHours"]
    try:
        configuration = lam.get_function_configuration(FunctionName=function_name)
    except lam.exceptions.ResourceNotFoundException:
        return None
    memory = int(configuration["MemorySize"])
    usage = memory_usage(logs, function_name, now - timedelta(hours=hours), now)
    if usage is None:
        return None
    target = proposed_memory(usage["peakMb"], config["memoryHeadroomPercent"])
    evidence = (
        f"{function_name}: {memory} MB configured, peak {usage['peakMb']} MB used over {usage['invocations']} invocations "
        f"in the last {hours} h (REPORT lines)."
    )
    if not usage["complete"]:
        # A peak read from part of the lines could be below the real one: report, never resize on it.
        evidence += f" Only the first {usage['invocations']} REPORT lines were read; not resized."
        return {"kind": "lambda-memory", "resource": function_name, "evidence": evidence, "monthlySaving": 0.0}
    if target >= memory:
        return {"kind": "lambda-memory", "resource": function_name, "evidence": evidence, "monthlySaving": 0.0}
    architecture = (configuration.get("Architectures") or ["x86_64"])[0]
    per_month = DAYS_PER_MONTH * 24 / hours
    saving = usage["billedSeconds"] * (memory - target) / 1024 * LAMBDA_GB_SECOND.get(architecture, LAMBDA_GB_SECOND["x86_64"]) * per_month
    action = {
        "id": f"lower_memory_{slug(function_name)}",
        "kind": "lambda-memory",
        "api": "lambda:UpdateFunctionConfiguration",
        "target": function_name,
        "description": f"Lower {function_name}'s memory from {memory} MB to {target} MB (peak used {usage['peakMb']} MB "
        f"+ {config['memoryHeadroomPercent']}% headroom), about {money(saving)}/month.",
        "before": {"memorySize": memory},
        "after": {"memorySize": target},
        "rollback": {"api": "lambda:UpdateFunctionConfiguration", "parameters": {"FunctionName": function_name, "MemorySize": memory}},
        "monthlySaving": round(saving, 2),
        "floorMb": usage["peakMb"],
    }
    return {"kind": "lambda-memory", "resource": function_name, "evidence": evidence, "monthlySaving": round(saving, 2), "action": action}


def _metric_sum(cloudwatch: Any, namespace: str, metric: str, dimensions: dict[str, str], start: datetime, end: datetime) -> float:
    points = metrics.datapoints(cloudwatch, namespace, metric, dimensions, start, end, 3600)
    return float(sum(point["Sum"] for point in points))


def index_throughput(table: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Each global secondary index's provisioned throughput: a switch back to provisioned must give every index its own."""
    return {
        index["IndexName"]: {
            "readCapacityUnits": int((index.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits", 0)),
            "writeCapacityUnits": int((index.get("ProvisionedThroughput") or {}).get("WriteCapacityUnits", 0)),
        }
        for index in table.get("GlobalSecondaryIndexes") or []
    }


def index_updates(indexes: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "IndexName": name,
                "ProvisionedThroughput": {
                    "ReadCapacityUnits": units["readCapacityUnits"],
                    "WriteCapacityUnits": units["writeCapacityUnits"],
                },
            }
        }
        for name, units in indexes.items()
    ]


def dynamodb_finding(dynamodb: Any, cloudwatch: Any, table_name: str, config: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    try:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    throughput = table.get("ProvisionedThroughput") or {}
    rcu, wcu = int(throughput.get("ReadCapacityUnits", 0)), int(throughput.get("WriteCapacityUnits", 0))
    if mode == "PAY_PER_REQUEST" or not (rcu or wcu):
        return None
    indexes = index_throughput(table)
    index_rcu = sum(i["readCapacityUnits"] for i in indexes.values())
    index_wcu = sum(i["writeCapacityUnits"] for i in indexes.values())
    hours = config["usageLookbackHours"]
    start = now - timedelta(hours=hours)
    reads = _metric_sum(cloudwatch, "AWS/DynamoDB", "ConsumedReadCapacityUnits", {"TableName": table_name}, start, now)
    writes = _metric_sum(cloudwatch, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", {"TableName": table_name}, start, now)
    seconds = hours * 3600
    read_use = reads / seconds / rcu if rcu else 0.0
    write_use = writes / seconds / wcu if wcu else 0.0
    provisioned = ((rcu + index_rcu) * DYNAMODB_RCU_HOUR + (wcu + index_wcu) * DYNAMODB_WCU_HOUR) * HOURS_PER_MONTH
    on_demand = (reads * DYNAMODB_READ_REQUEST_UNIT + writes * DYNAMODB_WRITE_REQUEST_UNIT) * DAYS_PER_MONTH * 24 / hours
    saving = provisioned - on_demand
    evidence = (
        f"{table_name}: provisioned {rcu} RCU / {wcu} WCU ({money(provisioned)}/month); average use {read_use:.1%} of reads and "
        f"{write_use:.1%} of writes over the last {hours} h; on demand would cost about {money(on_demand)}/month."
    )
    if max(read_use, write_use) >= UNDERUSED_UTILISATION or saving <= 0:
        return {"kind": "dynamodb-capacity", "resource": table_name, "evidence": evidence, "monthlySaving": 0.0}
    index_text = "".join(f"; index {name} {units['readCapacityUnits']} / {units['writeCapacityUnits']}" for name, units in indexes.items())
    action = {
        "id": f"switch_to_on_demand_{slug(table_name)}",
        "kind": "dynamodb-capacity",
        "api": "dynamodb:UpdateTable",
        "target": table_name,
        "description": f"Switch {table_name} from provisioned ({rcu} RCU / {wcu} WCU{index_text}) to on-demand capacity, about {money(saving)}/month. The switch takes several minutes; AWS allows a table "
        f"{ON_DEMAND_SWITCHES_PER_DAY} switches to on-demand in any 24 hours, and switching back to provisioned (the rollback) at any time.",
        "before": {"billingMode": "PROVISIONED", "readCapacityUnits": rcu, "writeCapacityUnits": wcu}
        | ({"indexes": indexes} if indexes else {}),
        "after": {"billingMode": "PAY_PER_REQUEST"},
        "rollback": {
            "api": "dynamodb:UpdateTable",
            "parameters": {
                "TableName": table_name,
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
            }
            | ({"GlobalSecondaryIndexUpdates": index_updates(indexes)} if indexes else {}),
        },
        "monthlySaving": round(saving, 2),
    }
    return {"kind": "dynamodb-capacity", "resource": table_name, "evidence": evidence, "monthlySaving": round(saving, 2), "action": action}


def bucket_size_bytes(cloudwatch: Any, bucket: str, now: datetime) -> float:
    dimensions = {"BucketName": bucket, "StorageType": "StandardStorage"}
    points = metrics.datapoints(cloudwatch, "AWS/S3", "BucketSizeBytes", dimensions, now - timedelta(days=3), now, 86400, ("Maximum",))
    return float(max((point["Maximum"] for point in points), default=0.0))


def bucket_object_count(cloudwatch: Any, bucket: str, now: datetime) -> int | None:
    """The bucket's object count, or None when S3 has published none yet (its storage metrics come once a day)."""
    dimensions = {"BucketName": bucket, "StorageType": "AllStorageTypes"}
    points = metrics.datapoints(cloudwatch, "AWS/S3", "NumberOfObjects", dimensions, now - timedelta(days=3), now, 86400, ("Maximum",))
    return int(max(point["Maximum"] for point in points)) if points else None


def lifecycle_rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules ([] when it has none)."""
    try:
        return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return []
        raise


def moves_to_intelligent_tiering(rule: dict[str, Any]) -> bool:
    return rule.get("Status") == "Enabled" and any(t.get("StorageClass") == "INTELLIGENT_TIERING" for t in rule.get("Transitions", []))


def s3_tiering_finding(s3: Any, cloudwatch: Any, bucket: str, config: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Objects in S3 Standard that a lifecycle transition would move to Intelligent-Tiering, priced with its fees."""
    try:
        rules = lifecycle_rules(s3, bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            return None
        raise
    if any(moves_to_intelligent_tiering(rule) for rule in rules):
        return None
    size = bucket_size_bytes(cloudwatch, bucket, now)
    objects = bucket_object_count(cloudwatch, bucket, now)
    if objects is None:
        # Intelligent-Tiering's fee is per object: without the count the saving cannot be priced honestly
        evidence = f"{bucket}: {size / GB:,.1f} GB in S3 Standard, but S3 has published no object count yet, so Intelligent-Tiering's monitoring fee cannot be priced."
        return {"kind": "s3-tiering", "resource": bucket, "evidence": evidence, "monthlySaving": 0.0}
    storage = size / GB * S3_ASSUMED_COLD_SHARE * (S3_STANDARD_GB_MONTH - S3_INFREQUENT_TIER_GB_MONTH)
    monitoring = objects / 1000 * S3_TIERING_MONITORING_PER_1000
    transition = objects / 1000 * S3_TIERING_TRANSITION_PER_1000
    saving = storage - monitoring
    evidence = f"{bucket}: {size / GB:,.1f} GB and {objects:,} objects in S3 Standard; no lifecycle rule moves them to Intelligent-Tiering."
    if saving <= 0:
        return {"kind": "s3-tiering", "resource": bucket, "evidence": evidence + " Its fees would exceed the saving.", "monthlySaving": 0.0}
    action = {
        "id": f"enable_intelligent_tiering_{slug(bucket)}",
        "kind": "s3-tiering",
        "api": "s3:PutBucketLifecycleConfiguration",
        "target": bucket,
        "description": f"Add lifecycle rule {TIERING_RULE_ID} to {bucket}, moving its objects to S3 Intelligent-Tiering "
        f"({len(rules)} existing rule(s) kept): about {money(saving)}/month if {S3_ASSUMED_COLD_SHARE:.0%} of the data goes "
        f"unread for 30 days ({money(storage)} storage less {money(monitoring)} monitoring), after a one-time "
        f"{money(transition)} for the transitions.",
        "before": {"lifecycleRules": rules},
        "after": {"rules": [*rules, TIERING_RULE]},
        "rollback": {
            "api": "s3:PutBucketLifecycleConfiguration",
            "parameters": {"Bucket": bucket, "LifecycleConfiguration": {"Rules": rules}},
        }
        if rules
        else {"api": "s3:DeleteBucketLifecycle", "parameters": {"Bucket": bucket}},
        "monthlySaving": round(saving, 2),
    }
    return {"kind": "s3-tiering", "resource": bucket, "evidence": evidence, "monthlySaving": round(saving, 2), "action": action}


def log_group(logs: Any, name: str) -> dict[str, Any] | None:
    """The log group named `name`, read through every page (a page may come back short or empty)."""
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return next((group for page in pages for group in page.get("logGroups", []) if group["logGroupName"] == name), None)


def log_retention_finding(logs: Any, group_name: str, config: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    group = log_group(logs, group_name)
    if group is None:
        return None
    wanted = config["logRetentionDays"]
    # Under an account-level retention policy DescribeLogGroups answers the policy's retention (none: never expire).
    retention = group.get("retentionInDays")
    if retention is not None and retention <= wanted:
        return None
    stored = float(group.get("storedBytes", 0))
    age_days = max((now - datetime.fromtimestamp(group.get("creationTime", 0) / 1000, now.tzinfo)).days, wanted)
    kept_days = min(retention, age_days) if retention else age_days
    saving = stored / GB * LOGS_STORED_GB_MONTH * max(1 - wanted / kept_days, 0.0) if kept_days else 0.0
    current = f"{retention} days" if retention else "never expire"
    evidence = f"{group_name}: retention {current}, {stored / GB:,.1f} GB stored."
    policy = group.get("retentionPolicyName")
    if policy:
        # PutRetentionPolicy would succeed and change nothing: the account-level policy decides the retention.
        return {
            "kind": "log-retention",
            "resource": group_name,
            "evidence": f"{evidence} The retention comes from the account-level retention policy {policy}, which overrides "
            "the log group's own setting.",
            "monthlySaving": 0.0,
            "recommendation": f"{group_name} keeps logs {current} because of the account-level retention policy {policy}; "
            "setting the group's own retention would change nothing. Ask the account's CloudWatch Logs administrator to "
            f"narrow {policy}'s selection so it no longer covers the group (an account-level policy keeps at least 30 "
            f"days), then run cost-spike again to set {wanted} days (about {money(saving)}/month).",
        }
    action = {
        "id": f"set_log_retention_{slug(group_name)}",
        "kind": "log-retention",
        "api": "logs:PutRetentionPolicy",
        "target": group_name,
        "description": f"Set retention of {group_name} from {current} to {wanted} days, about {money(saving)}/month.",
        "before": {"retentionInDays": retention},
        "after": {"retentionInDays": wanted},
        "rollback": (
            {"api": "logs:PutRetentionPolicy", "parameters": {"logGroupName": group_name, "retentionInDays": retention}}
            if retention
            else {"api": "logs:DeleteRetentionPolicy", "parameters": {"logGroupName": group_name}}
        ),
        "monthlySaving": round(saving, 2),
    }
    return {"kind": "log-retention", "resource": group_name, "evidence": evidence, "monthlySaving": round(saving, 2), "action": action}


def runaway_finding(cloudwatch: Any, state_machine_arn: str, config: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The event-loop playbook's signal: executions started per minute above the normal rate. Reported, not acted on."""
    if not state_machine_arn:
        return None
    since = now - timedelta(minutes=config["lookbackMinutes"])
    points = metrics.datapoints(cloudwatch, "AWS/States", "ExecutionsStarted", {"StateMachineArn": state_machine_arn}, since, now, 60)
    peak = int(max((point["Sum"] for point in points), default=0))
    if peak <= config["runawayExecutionsPerMinute"]:
        return None
    name = state_machine_arn.rsplit(":", 1)[-1]
    return {
        "kind": "runaway-executions",
        "resource": name,
        "evidence": f"{name}: up to {peak} executions started per minute in the last {config['lookbackMinutes']} minutes "
        f"(normal is under {config['runawayExecutionsPerMinute']}).",
        "monthlySaving": 0.0,
        "recommendation": f"Runaway executions of {name} look like an S3 event loop: run the event-loop playbook "
        "(this playbook does not act on it).",
    }


def find_savings(
    clients: dict[str, Any], scope: dict[str, list[str]], state_machine_arn: str, config: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    findings: list[dict[str, Any] | None] = []
    findings += [lambda_memory_finding(clients["lambda"], clients["logs"], name, config, now) for name in scope["functions"]]
    findings += [dynamodb_finding(clients["dynamodb"], clients["cloudwatch"], name, config, now) for name in scope["tables"]]
    findings += [s3_tiering_finding(clients["s3"], clients["cloudwatch"], name, config, now) for name in scope["buckets"]]
    findings += [log_retention_finding(clients["logs"], name, config, now) for name in scope["logGroups"]]
    findings.append(runaway_finding(clients["cloudwatch"], state_machine_arn, config, now))
    return [finding for finding in findings if finding is not None]


# ------------------------------------------------------------------------------------------------ plan
def in_scope(action: dict[str, Any], scope: dict[str, list[str]]) -> bool:
    allowed = {
        "lambda-memory": scope["functions"],
        "dynamodb-capacity": scope["tables"],
        "s3-tiering": scope["buckets"],
        "log-retention": scope["logGroups"],
    }
    return action["target"] in allowed.get(action["kind"], [])


def plan(costs: dict[str, Any], findings: list[dict[str, Any]], scope: dict[str, list[str]], config: dict[str, Any]) -> dict[str, Any]:
    window = costs["window"]
    top = ", ".join(f"{row['service']} {money(row['amount'])} ({row['share']}%)" for row in costs["top"]) or "no cost recorded"
    evidence = [
        f"Cost {window['start']} to {window['end']} (Cost Explorer, BlendedCost): {money(costs['total'])} {costs['unit']}.",
        f"Top contributors: {top}.",
        "Daily cost: " + ", ".join(f"{day['date']} {money(day['amount'])}" for day in costs["daily"]) + ".",
    ]
    evidence += [finding["evidence"] for finding in findings]
    actions = [
        finding["action"]
        for finding in findings
        if finding.get("action") and in_scope(finding["action"], scope) and finding["monthlySaving"] >= config["minMonthlySavingUsd"]
    ]
    for action in actions:
        # The guard the approver relies on: a memory change never goes below the observed peak plus headroom.
        if action["kind"] == "lambda-memory" and action["after"]["memorySize"] < action["floorMb"] * (
            1 + config["memoryHeadroomPercent"] / 100
        ):
            raise ValueError(f"refusing to size {action['target']} below its observed peak plus headroom")
    recommendations = [finding["recommendation"] for finding in findings if finding.get("recommendation")]
    baseline = (
        f"${costs['costPerFile']:.4f} per processed file ({costs['processedFiles']} files in {window['days']} days)"
        if costs.get("costPerFile")
        else f"{money(costs['total'])} over {window['days']} days"
    )
    follow_up = (
        f"Follow-up: re-check in 7 days (run cost-spike again, or Cost Explorer) and compare the cost per processed file "
        f"with today's baseline of {baseline}."
    )
    saving = round(sum(action["monthlySaving"] for action in actions), 2)
    if not actions:
        return {
            "case": "nothing-to-change",
            "summary": f"No savings to apply in the pipeline; it cost {money(costs['total'])} over the last {window['days']} days.",
            "actions": [],
            "evidence": evidence,
            "recommendations": [*recommendations, follow_up],
            "costs": costs,
            "estimatedMonthlySaving": 0.0,
        }
    return {
        "case": "savings",
        "summary": f"{len(actions)} savings found in the pipeline, about {money(saving)}/month in total "
        f"(cost over the last {window['days']} days: {money(costs['total'])}). Approve any subset.",
        "actions": actions,
        "evidence": evidence,
        "recommendations": recommendations + RECOMMENDATIONS + [follow_up],
        "costs": costs,
        "estimatedMonthlySaving": saving,
    }


# ------------------------------------------------------------------------------------------------ verify
def current_value(clients: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    target = action["target"]
    if action["kind"] == "lambda-memory":
        configuration = clients["lambda"].get_function_configuration(FunctionName=target)
        return {"memorySize": configuration["MemorySize"], "lastUpdateStatus": configuration.get("LastUpdateStatus", "Successful")}
    if action["kind"] == "dynamodb-capacity":
        table = clients["dynamodb"].describe_table(TableName=target)["Table"]
        return {
            "billingMode": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
            "tableStatus": table["TableStatus"],
        }
    if action["kind"] == "s3-tiering":
        return {"lifecycleRules": lifecycle_rules(clients["s3"], target)}
    group: dict[str, Any] = log_group(clients["logs"], target) or {}
    return {"retentionInDays": group.get("retentionInDays")}


def still_as_planned(clients: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """Read the resource again just before the change: an approval can come hours after the plan, and a resource that
    changed since (memory raised after an out-of-memory error, retention set by hand) is left alone."""
    if action["kind"] == "s3-tiering":
        # the rule set is written whole: any change to it since the plan would be overwritten
        current = current_value(clients, action)
        return {"asPlanned": current["lifecycleRules"] == action["before"]["lifecycleRules"], "current": current}
    current = current_value(clients, action)
    if action["kind"] == "lambda-memory":
        planned = current["memorySize"] == action["before"]["memorySize"] and current["lastUpdateStatus"] != "InProgress"
    elif action["kind"] == "dynamodb-capacity":
        # a table being updated refuses another UpdateTable: someone else is changing it
        planned = current["billingMode"] == action["before"]["billingMode"] and current["tableStatus"] == "ACTIVE"
    else:
        planned = all(current.get(key) == value for key, value in action["before"].items() if key in current)
    return {"asPlanned": planned, "current": current}


def still_updating(action: dict[str, Any], current: dict[str, Any]) -> bool:
    """The change was accepted but AWS is still making it (Lambda's LastUpdateStatus, DynamoDB's TableStatus)."""
    if action["kind"] == "lambda-memory":
        return current["lastUpdateStatus"] == "InProgress"
    if action["kind"] == "dynamodb-capacity":
        return current["tableStatus"] != "ACTIVE"
    return False


def in_place(action: dict[str, Any], current: dict[str, Any]) -> bool:
    """The new configuration is in effect: for an asynchronous update, only once AWS says it finished (the SDK
    waiters' success: LastUpdateStatus Successful, TableStatus ACTIVE)."""
    if action["kind"] == "lambda-memory":
        return bool(current["memorySize"] == action["after"]["memorySize"] and current["lastUpdateStatus"] == "Successful")
    if action["kind"] == "dynamodb-capacity":
        return bool(current["billingMode"] == action["after"]["billingMode"] and current["tableStatus"] == "ACTIVE")
    if action["kind"] == "s3-tiering":
        # ours is in place and every rule the bucket had before is still there
        rules = current.get("lifecycleRules", [])
        kept = all(rule in rules for rule in action["before"]["lifecycleRules"])
        return kept and any(rule.get("ID") == TIERING_RULE_ID and moves_to_intelligent_tiering(rule) for rule in rules)
    return all(current.get(key) == value for key, value in action["after"].items())


def verify(
    clients: dict[str, Any], plan_: dict[str, Any], applied: list[dict[str, Any]], config: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Whether every applied change is in effect; `settling` while an update AWS accepted is still being made and the
    deadline (settleTimeoutSeconds after the first change) has not passed, so the state machine polls again."""
    done = {item["id"] for item in applied if item.get("applied")}
    checks = []
    for action in plan_["actions"]:
        if action["id"] not in done:
            continue
        current = current_value(clients, action)
        checks.append(
            {
                "id": action["id"],
                "target": action["target"],
                "expected": action["after"],
                "actual": current,
                "ok": in_place(action, current),
                "updating": still_updating(action, current),
            }
        )
    failed = [item["id"] for item in applied if item.get("error")]
    changed = [item["id"] for item in applied if item.get("skipped")]
    verified = bool(checks) and not failed and not changed and all(check["ok"] for check in checks)
    started = [clock.parse(item["appliedAt"]) for item in applied if item.get("appliedAt")]
    deadline = min(started) + timedelta(seconds=config["settleTimeoutSeconds"]) if started else now
    settling = not verified and any(check["updating"] for check in checks) and now < deadline
    return {"checks": checks, "failed": failed, "changedSincePlan": changed, "verified": verified, "settling": settling}


# ------------------------------------------------------------------------------------------------ trigger
BUDGET_FIELD = re.compile(
    r"^(?P<key>Budget Name|Budgeted Amount|Alert Threshold|Alert Type|ACTUAL Amount|FORECASTED Amount):\s*(?P<value>.+)$", re.M
)


def _amount(text: str) -> float | None:
    match = re.search(r"[\d,]+(?:\.\d+)?", text)
    return float(match.group().replace(",", "")) if match else None


def input_from_notification(subject: str, message: str) -> dict[str, Any]:
    """The playbook input for an AWS Budgets or Cost Anomaly Detection notification delivered by SNS."""
    try:
        anomaly = json.loads(message)
    except ValueError:
        anomaly = None
    if isinstance(anomaly, dict) and "anomalyId" in anomaly:
        impact = anomaly.get("impact") or {}
        causes = [cause.get("service") for cause in anomaly.get("rootCauses") or [] if cause.get("service")]
        return {
            "alert": {
                "source": "anomaly-detection",
                "summary": f"Cost anomaly {anomaly['anomalyId']}: impact {money(float(impact.get('totalImpact', 0)))}"
                + (f" in {', '.join(causes)}" if causes else ""),
                "actual": impact.get("totalActualSpend"),
                "expected": impact.get("totalExpectedSpend"),
            }
        }
    fields = {match["key"]: match["value"].strip() for match in BUDGET_FIELD.finditer(message)}
    if "Budget Name" in fields:
        alert_type = fields.get("Alert Type", "ACTUAL")
        return {
            "budgetName": fields["Budget Name"],
            "alert": {
                "source": "budgets",
                "summary": " ".join(subject.split()) or f"Budget {fields['Budget Name']} alert",
                "actual": _amount(fields.get(f"{alert_type} Amount", "")),
                "threshold": _amount(fields.get("Alert Threshold", "")),
                "budgeted": _amount(fields.get("Budgeted Amount", "")),
            },
        }
    return {"alert": {"source": "notification", "summary": " ".join(subject.split())[:200] or "cost notification"}}


def start_from_records(sfn: Any, state_machine_arn: str, records: list[dict[str, Any]]) -> list[str]:
    """One execution per notification; named after the SNS message id so a redelivered message starts nothing new."""
    started = []
    for record in records:
        notification = record["Sns"]
        payload = input_from_notification(notification.get("Subject") or "", notification["Message"])
        name = f"sns-{notification['MessageId']}"[:80]
        try:
            arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
        except sfn.exceptions.ExecutionAlreadyExists:
            logger.info("notification already handled", extra={"execution": name})
            continue
        logger.info("playbook started", extra={"execution": name, "source": payload["alert"]["source"]})
        started.append(arn)
    return started


# ------------------------------------------------------------------------------------------------ handlers
def _clients() -> dict[str, Any]:
    return {service: client(service) for service in ("lambda", "logs", "dynamodb", "s3", "cloudwatch")}


@logger.inject_lambda_context
def start_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"executions": start_from_records(client("stepfunctions"), os.environ["STATE_MACHINE_ARN"], event.get("Records", []))}


@logger.inject_lambda_context
def costs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = measure_costs(
        client("ce"), client("cloudwatch"), os.environ.get("ETL_STATE_MACHINE_ARN", ""), event["config"]["costLookbackDays"], clock.now()
    )
    logger.info("measured cost", extra={"total": result["total"], "services": len(result["services"])})
    return result


@logger.inject_lambda_context
def findings_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    result = find_savings(_clients(), scope_from_env(), os.environ.get("ETL_STATE_MACHINE_ARN", ""), event["config"], clock.now())
    logger.info("looked for savings", extra={"findings": [f"{f['kind']} {f['resource']}" for f in result]})
    return result


@logger.inject_lambda_context
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(event["costs"], event["findings"], scope_from_env(), event["config"])
    logger.info("proposed plan", extra={"case": result["case"], "actions": [a["id"] for a in result["actions"]]})
    return result


@logger.inject_lambda_context
def precheck_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = still_as_planned(_clients(), event["action"])
    logger.info("read before change", extra={"action": event["action"]["id"], "asPlanned": result["asPlanned"]})
    return result


@logger.inject_lambda_context
def verify_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = verify(_clients(), event["plan"], event["applied"], event["config"], clock.now())
    logger.info("verified", extra={"verified": result["verified"], "checks": len(result["checks"])})
    return result
