"""Lambda throttling playbook: measure, classify and verify (runbook "Lambda Throttling (Error Rate Spike)").

The reads that are one API call (GetFunctionConcurrency, GetAccountSettings) and the change itself
(PutFunctionConcurrency, RequestServiceQuotaIncrease) are direct AWS SDK tasks in the state machine; this module
holds what needs logic: metric windows, the Logs Insights query, the classification and the plan.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clock, metrics
from shared.aws import client

logger = Logger()

# AWS keeps at least this much of the account's concurrency unreserved; PutFunctionConcurrency refuses to go lower.
MIN_UNRESERVED_CONCURRENCY = 100
LAMBDA_CONCURRENCY_QUOTA_CODE = "L-B99A9384"
INSIGHTS_QUERY = "stats count() by bin(5m)"
INSIGHTS_POLL_SECONDS = 1.0
INSIGHTS_DEADLINE_SECONDS = 30.0

# Lambda sends its metrics to CloudWatch once a minute; a minute's datapoints can take about another minute to arrive.
METRIC_DELAY_SECONDS = 60
RECOMMENDATIONS = [
    "Short-term: put an SQS queue in front of Step Functions to buffer spikes.",
    "Short-term: add exponential backoff to the upstream S3 event triggers.",
    "Short-term: review the function's duration; a faster function needs less concurrency.",
    "Long-term: migrate the workflow to Step Functions Express Workflows for higher throughput.",
    "Long-term: batch small files before processing to reduce the invocation count.",
    "Long-term: set reserved concurrency per function from its observed traffic pattern.",
]


def metric_sum(cloudwatch: Any, metric: str, function_name: str, start: datetime, end: datetime, period: int) -> list[dict[str, Any]]:
    return metrics.datapoints(cloudwatch, "AWS/Lambda", metric, {"FunctionName": function_name}, start, end, period, ("Sum", "Maximum"))


def insights_bins(logs: Any, function_name: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The runbook's `stats count() by bin(5m)` over the function's log group; degrades to a note if unavailable."""
    log_group = f"/aws/lambda/{function_name}"
    try:
        query_id = logs.start_query(
            logGroupName=log_group,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()),
            queryString=INSIGHTS_QUERY,
        )["queryId"]
        deadline = time.monotonic() + INSIGHTS_DEADLINE_SECONDS
        while True:
            result = logs.get_query_results(queryId=query_id)
            if result["status"] not in ("Scheduled", "Running"):
                break
            if time.monotonic() > deadline:
                return {"status": "Timeout", "bins": []}
            time.sleep(INSIGHTS_POLL_SECONDS)
    except logs.exceptions.ResourceNotFoundException:
        return {"status": "NoLogGroup", "bins": []}
    bins = []
    for row in result.get("results", []):
        fields = {cell["field"]: cell["value"] for cell in row}
        bins.append({"bin": fields.get("bin(5m)"), "count": int(float(fields.get("count()", 0)))})
    return {"status": result["status"], "bins": sorted(bins, key=lambda item: item["bin"] or "")}


def diagnose(cloudwatch: Any, logs: Any, function_name: str, lookback_minutes: int, end: datetime) -> dict[str, Any]:
    start = end - timedelta(minutes=lookback_minutes)
    throttles = metric_sum(cloudwatch, "Throttles", function_name, start, end, 300)
    invocations = metric_sum(cloudwatch, "Invocations", function_name, start, end, 300)
    concurrency = metric_sum(cloudwatch, "ConcurrentExecutions", function_name, start, end, 300)
    peak = max((point["Maximum"] for point in concurrency), default=0)
    return {
        "window": {"start": clock.iso(start), "end": clock.iso(end)},
        "throttles": int(sum(point["Sum"] for point in throttles)),
        "peakConcurrency": int(peak),
        "bins": [{"start": clock.iso(point["Timestamp"]), "invocations": int(point["Sum"])} for point in invocations],
        "insights": insights_bins(logs, function_name, start, end),
    }


def _raise_reservation(function_name: str, reserved: int, account: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """The raised reservation: doubled (configurable), capped, and never leaving unreserved below AWS's minimum."""
    headroom = account["unreservedConcurrentExecutions"] - MIN_UNRESERVED_CONCURRENCY
    wanted = math.ceil(reserved * config["concurrencyIncreaseFactor"])
    proposed = min(wanted, config["maxReservedConcurrency"], reserved + max(headroom, 0))
    if proposed <= reserved:
        return None
    return {
        "id": "raise_reserved_concurrency",
        "api": "lambda:PutFunctionConcurrency",
        "target": function_name,
        "description": f"Raise reserved concurrency of {function_name} from {reserved} to {proposed}.",
        "before": {"reservedConcurrentExecutions": reserved},
        "after": {"reservedConcurrentExecutions": proposed},
        "rollback": {
            "api": "lambda:PutFunctionConcurrency",
            "parameters": {"FunctionName": function_name, "ReservedConcurrentExecutions": reserved},
        },
    }


def _quota_increase(account: dict[str, Any]) -> dict[str, Any]:
    limit = account["concurrentExecutions"]
    return {
        "id": "request_concurrency_quota_increase",
        "api": "servicequotas:RequestServiceQuotaIncrease",
        "target": f"lambda/{LAMBDA_CONCURRENCY_QUOTA_CODE}",
        "description": f"Request a Lambda concurrent-executions quota increase from {limit} to {limit * 2}.",
        "before": {"concurrentExecutions": limit},
        "after": {"concurrentExecutions": limit * 2},
        "rollback": None,
    }


def plan(target: dict[str, Any], findings: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    function_name = target["functionName"]
    account = findings["account"]
    measured = findings["measured"]["metrics"]
    reserved = findings["function"]["reserved"].get("ReservedConcurrentExecutions")
    evidence = [
        f"Throttles of {function_name} over the last {config['lookbackMinutes']} minutes: {measured['throttles']}.",
        f"Peak concurrent executions: {measured['peakConcurrency']}.",
        f"Reserved concurrency: {reserved if reserved is not None else 'none (uses the unreserved pool)'}.",
        f"Account concurrency limit: {account['concurrentExecutions']}, unreserved: {account['unreservedConcurrentExecutions']}.",
    ]
    if measured["insights"]["bins"]:
        counts = ", ".join(f"{item['bin']}: {item['count']}" for item in measured["insights"]["bins"])
        evidence.append(f"Log events per 5 minutes (Logs Insights): {counts}.")
    else:
        evidence.append(f"Logs Insights per-5-minute counts unavailable ({measured['insights']['status']}).")

    if measured["throttles"] == 0:
        return {
            "case": "no-throttling",
            "summary": f"{function_name} was not throttled in the last {config['lookbackMinutes']} minutes; nothing to do.",
            "actions": [],
            "evidence": evidence,
            "recommendations": [],
        }
    action = _raise_reservation(function_name, reserved, account, config) if reserved is not None else None
    if action is not None:
        return {
            "case": "function-level",
            "summary": f"{function_name} is throttled at its reserved concurrency of {reserved}.",
            "actions": [action],
            "evidence": evidence,
            "recommendations": RECOMMENDATIONS,
        }
    return {
        "case": "account-level",
        "summary": f"{function_name} is throttled because the account's concurrency is exhausted "
        f"(limit {account['concurrentExecutions']}, unreserved {account['unreservedConcurrentExecutions']}).",
        "actions": [_quota_increase(account)],
        "evidence": evidence,
        "recommendations": RECOMMENDATIONS,
    }


def verify(cloudwatch: Any, function_name: str, since: datetime, end: datetime) -> dict[str, Any]:
    """Throttles from the first whole minute after the change. CloudWatch rounds a recent StartTime down to the
    minute, so asking from the change itself would count that minute's throttles from before it. Only a minute that
    has closed, and whose metrics had time to arrive, can show that throttling stopped."""
    start = since.replace(second=0, microsecond=0) + timedelta(minutes=1) if since.second or since.microsecond else since
    conclusive = end >= start + timedelta(seconds=60 + METRIC_DELAY_SECONDS)
    points = metric_sum(cloudwatch, "Throttles", function_name, start, max(end, start + timedelta(seconds=60)), 60)
    throttles = int(sum(point["Sum"] for point in points))
    return {
        "throttles": throttles,
        "stopped": conclusive and throttles == 0,
        "conclusive": conclusive,
        "since": clock.iso(start),
        "until": clock.iso(end),
    }


@logger.inject_lambda_context
def diagnose_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = diagnose(client("cloudwatch"), client("logs"), event["functionName"], event["config"]["lookbackMinutes"], clock.now())
    logger.info("measured throttling", extra={"functionName": event["functionName"], "throttles": result["throttles"]})
    return result


@logger.inject_lambda_context
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(event["target"], event["findings"], event["config"])
    logger.info("proposed plan", extra={"case": result["case"], "actions": [a["id"] for a in result["actions"]]})
    return result


@logger.inject_lambda_context
def verify_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = verify(client("cloudwatch"), event["functionName"], clock.parse(event["since"]), clock.now())
    logger.info("verified", extra={"functionName": event["functionName"], "throttles": result["throttles"]})
    return result
