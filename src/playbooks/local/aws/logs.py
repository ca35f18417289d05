"""CloudWatch Logs: Insights' count-by-bin queries, the history a log group holds from before the scenario, and
account-level retention policies."""

from __future__ import annotations

import datetime
import re
import time
from collections import Counter
from typing import Any

from .runtime import Gap, Source, active

GAPS = [
    Gap(
        "logs:StartQuery",
        "aggregates `stats count() by bin(Nm)`",
        "returns raw rows: we aggregate counts per bin",
        sources=(
            Source(
                "Amazon CloudWatch Logs user guide, Logs Insights query syntax: stats",
                "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html",
            ),
        ),
    ),
    Gap(
        "logs storedBytes and creationTime",
        "count everything a log group has stored since it was created",
        "count only the events put in this session and date the group now: scenarios declare the stored bytes and age of older data",
        sources=(
            Source(
                "Amazon CloudWatch Logs API reference, LogGroup (arn, creationTime, storedBytes)",
                "https://docs.aws.amazon.com/goto/WebAPI/logs-2014-03-28/LogGroup",
            ),
        ),
    ),
    Gap(
        "account-level retention policies (PutAccountPolicy, policyType RETENTION_POLICY)",
        "override the retention set on a log group: PutRetentionPolicy still succeeds and saves its value, but "
        "DescribeLogGroups answers the policy's retentionInDays (none for NEVER_EXPIRE) and names it in "
        "retentionPolicyName; of several matching policies the longest retention wins. Sources: CloudWatch Logs API "
        "Reference, 'PutRetentionPolicy', 'PutAccountPolicy' (Retention policy; conflict resolution) and 'LogGroup' "
        "(retentionPolicyName)",
        "has no retention policies: scenarios declare them (all log groups, or a name prefix), in force since before the "
        "incident, and DescribeLogGroups answers as AWS does",
        sources=(
            Source(
                "Amazon CloudWatch Logs API reference, PutAccountPolicy (conflict resolution between account-level and log-group-level policies)",
                "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutAccountPolicy.html",
            ),
            Source(
                "Amazon CloudWatch Logs API reference, LogGroup (arn, creationTime, storedBytes)",
                "https://docs.aws.amazon.com/goto/WebAPI/logs-2014-03-28/LogGroup",
            ),
        ),
    ),
]

NEVER_EXPIRE = "NEVER_EXPIRE"


_BIN_QUERY = re.compile(r"^\s*stats\s+count\(\*?\)\s+by\s+bin\((\d+)([smh])\)\s*$")


def _patch_logs_insights() -> None:
    from moto.logs import models

    original = models.execute_query

    def execute_query(log_groups: list[Any], query: str, start_time: int, end_time: int) -> list[dict[str, Any]]:
        match = _BIN_QUERY.match(query)
        if not match:
            return original(log_groups=log_groups, query=query, start_time=start_time, end_time=end_time)
        size = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)] * 1000
        counts: Counter[int] = Counter()
        for group in log_groups:
            for stream in group.streams.values():
                for event in stream.events:
                    if start_time * 1000 <= event.timestamp <= end_time * 1000:
                        counts[event.timestamp - event.timestamp % size] += 1
        label = f"bin({match.group(1)}{match.group(2)})"
        return [
            {label: time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(start / 1000)), "count()": str(count)}
            for start, count in sorted(counts.items())
        ]

    models.execute_query = execute_query  # type: ignore[assignment]


def set_log_group_history(group_name: str, stored_bytes: int, age_days: int) -> None:
    """What a log group holds from before the scenario: its stored bytes and its creation time."""
    from moto.logs.models import LogStream, logs_backends

    account = active()
    group = logs_backends[account.account_id][account.region].groups[group_name]
    archive = LogStream(group, "archived")
    archive.stored_bytes = stored_bytes
    group.streams["archived"] = archive
    group.creation_time = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=age_days)


def put_account_retention_policy(name: str, retention: int | str, prefix: str = "") -> None:
    """An account-level retention policy in force (for every log group, or those whose name starts with `prefix`)."""
    from moto.logs.models import logs_backends

    account = active()
    backend: Any = logs_backends[account.account_id][account.region]
    policies = getattr(backend, "local_retention_policies", [])
    backend.local_retention_policies = [*policies, {"name": name, "retention": retention, "prefix": prefix}]


def _governing_policy(group: Any) -> dict[str, Any] | None:
    """The policy that sets this group's retention: the longest of those that match (NEVER_EXPIRE is longest; on a tie
    the first created)."""
    from moto.logs.models import logs_backends

    backend = logs_backends[group.account_id][group.region]
    matching = [p for p in getattr(backend, "local_retention_policies", []) if group.name.startswith(p["prefix"])]
    if not matching:
        return None
    return max(matching, key=lambda p: float("inf") if p["retention"] == NEVER_EXPIRE else int(p["retention"]))


def _patch_account_retention() -> None:
    from moto.logs.models import LogGroup

    original = LogGroup.to_describe_dict

    def to_describe_dict(self: Any) -> dict[str, Any]:
        described = original(self)
        policy = _governing_policy(self)
        if policy is not None:
            described.pop("retentionInDays", None)
            if policy["retention"] != NEVER_EXPIRE:
                described["retentionInDays"] = int(policy["retention"])
            described["retentionPolicyName"] = policy["name"]
        return described

    LogGroup.to_describe_dict = to_describe_dict  # type: ignore[method-assign]


def patch_moto() -> None:
    _patch_logs_insights()
    _patch_account_retention()
