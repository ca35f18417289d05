"""What the pipeline's resources hold, as their AWS APIs answer, so an undo can be checked byte for byte.

Only what the playbooks may change is read (the stack's own resources are left out): reserved concurrency and
memory of functions, tables' capacity, buckets' Intelligent-Tiering configurations and lifecycle rules, log retention, roles' inline
policies, key policies, rules' patterns and states, alarms. Policies and patterns are kept as the API returns
their text (not re-serialised), so formatting differences count.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from .local.account import LocalAccount
from .local.recorder import PRINCIPAL

ALARM_FIELDS = ("MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator", "Dimensions")


def snapshot(account: LocalAccount) -> dict[str, Any]:
    token = PRINCIPAL.set("world")
    try:
        own = set(account.resources.values()) | set(account.functions)
        return {
            "functions": _functions(account, own),
            "tables": _tables(account, own),
            "buckets": _buckets(account),
            "logGroups": _log_groups(account),
            "roles": _roles(account),
            "keys": _keys(account),
            "rules": _rules(account, own),
            "alarms": _alarms(account),
        }
    finally:
        PRINCIPAL.reset(token)


def _functions(account: LocalAccount, own: set[str]) -> dict[str, Any]:
    lam = account.client("lambda")
    found = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if name in own:
                continue
            found[name] = {
                "memorySize": function["MemorySize"],
                "reservedConcurrency": lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions"),
            }
    return found


def _tables(account: LocalAccount, own: set[str]) -> dict[str, Any]:
    dynamodb = account.client("dynamodb")
    found = {}
    for name in dynamodb.list_tables()["TableNames"]:
        if name in own:
            continue
        table = dynamodb.describe_table(TableName=name)["Table"]
        throughput = table.get("ProvisionedThroughput") or {}
        found[name] = {
            "billingMode": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
            "read": throughput.get("ReadCapacityUnits"),
            "write": throughput.get("WriteCapacityUnits"),
        }
    return found


def _buckets(account: LocalAccount) -> dict[str, Any]:
    s3 = account.client("s3")
    found = {}
    for bucket in s3.list_buckets()["Buckets"]:
        configurations = s3.list_bucket_intelligent_tiering_configurations(Bucket=bucket["Name"]).get(
            "IntelligentTieringConfigurationList", []
        )
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket["Name"]).get("Rules", [])
        except s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        # cost-spike's tiering is a lifecycle rule: the rules' ids are part of what undo must put back
        found[bucket["Name"]] = sorted(json.dumps(c, sort_keys=True, default=str) for c in configurations) + sorted(
            f"lifecycle rule {rule.get('ID', '')}" for rule in rules
        )
    return found


def _log_groups(account: LocalAccount) -> dict[str, Any]:
    logs = account.client("logs")
    found = {}
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            found[group["logGroupName"]] = group.get("retentionInDays")
    return found


def _roles(account: LocalAccount) -> dict[str, Any]:
    iam = account.client("iam")
    found = {}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            policies = {}
            for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
                # The SDK parses the URL-encoded document; its text in order is what was stored.
                policies[policy_name] = unquote(document) if isinstance(document, str) else json.dumps(document)
            found[name] = policies
    return found


def _keys(account: LocalAccount) -> dict[str, Any]:
    kms = account.client("kms")
    return {key["KeyId"]: kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] for key in kms.list_keys()["Keys"]}


def _rules(account: LocalAccount, own: set[str]) -> dict[str, Any]:
    events = account.client("events")
    found = {}
    for page in events.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            if rule["Name"] in own or "EventPattern" not in rule:
                continue
            found[rule["Name"]] = {"pattern": rule["EventPattern"], "state": rule["State"], "description": rule.get("Description")}
    return found


def _alarms(account: LocalAccount) -> dict[str, Any]:
    cloudwatch = account.client("cloudwatch")
    found = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate():
        for alarm in page["MetricAlarms"]:
            found[alarm["AlarmName"]] = {key: alarm.get(key) for key in ALARM_FIELDS}
    return found


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every resource whose answer differs, as "kind name: before -> after"."""
    found = []
    for kind in sorted(set(before) | set(after)):
        was, now = before.get(kind, {}), after.get(kind, {})
        for name in sorted(set(was) | set(now)):
            if json.dumps(was.get(name), default=str) != json.dumps(now.get(name), default=str):
                found.append(f"{kind} {name}: {json.dumps(was.get(name), default=str)} -> {json.dumps(now.get(name), default=str)}")
    return found
