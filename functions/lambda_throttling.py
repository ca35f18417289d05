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
# Service Quotas statuses of a request AWS is still handling: only one may be open per quota.
OPEN_REQUEST_STATUSES = ("PENDING", "CASE_OPENED")
MAX_REQUEST_PAGES = 100
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


def open_quota_request(quotas: Any) -> dict[str, Any] | None:
    """The account's open request for Lambda's concurrency quota, if any: AWS allows one open request per quota, and
    a second RequestServiceQuotaIncrease fails with ResourceAlreadyExistsException."""
    request: dict[str, Any] = {"ServiceCode": "lambda", "QuotaCode": LAMBDA_CONCURRENCY_QUOTA_CODE}
    for _ in range(MAX_REQUEST_PAGES):
        page = quotas.list_requested_service_quota_change_history_by_quota(**request)
        for item in page.get("RequestedQuotas", []):
            if item.get("Status") in OPEN_REQUEST_STATUSES:
                return {
                    "id": item["Id"],
                    "status": item["Status"],
                    "caseId": item.get("CaseId"),
                    "desiredValue": int(item.get("DesiredValue", 0)),
                    "created": clock.iso(item["Created"]) if isinstance(item.get("Created"), datetime) else item.get("Created"),
                }
        if not page.get("NextToken"):
            return None
        request["NextToken"] = page["NextToken"]
    return None


def diagnose(cloudwatch: Any, logs: Any, function_name: str, lookback_minutes: int, end: datetime) -> dict[str, Any]:
    start = end - timedelta(minutes=lookback_minutes)
    throttles = metric_sum(cloudwatch, "Throttles", function_name, start, end, 300)
    invocations = metric_sum(cloudwatch, "Invocations", function_name, start, end, 300)
    concurrency = metric_sum(cloudwatch, "ConcurrentExecutions", function_name, start, end, 300)
    peak = max((point["Maximum"] for point in concurrency), default=0)
    return {
        "window": {"start": clock.iso(start), "end": clock.iso(end)},
        "throttles": int(sum(point["Sum"] for point in throttles)),
        "peakThrottlesPer5Minutes": int(max((point["Sum"] for point in throttles), default=0)),
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


def _restore_reservation(
    function_name: str, account: dict[str, Any], measured: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any] | None:
    """A reservation of 0 throttles every call (the console's "Throttle" button sets it), so there is nothing to double.
    With every call throttled, Throttles counts every attempt: by Little's law the concurrency that serves the busiest
    5 minutes' attempts, each running at most the function's timeout, is rate x timeout. That upper bound, capped like
    any raise and never leaving less than AWS's unreserved minimum, is the reservation to restore."""
    rate = measured.get("peakThrottlesPer5Minutes", 0) / 300
    wanted = max(1, math.ceil(rate * measured.get("timeoutSeconds", 900)))
    headroom = account["unreservedConcurrentExecutions"] - MIN_UNRESERVED_CONCURRENCY
    proposed = min(wanted, config["maxReservedConcurrency"], max(headroom, 0))
    if proposed <= 0:
        return None
    return {
        "id": "raise_reserved_concurrency",
        "api": "lambda:PutFunctionConcurrency",
        "target": function_name,
        "description": f"Raise reserved concurrency of {function_name} from 0 (every call throttled) to {proposed}: the busiest "
        f"5 minutes' {measured.get('peakThrottlesPer5Minutes', 0)} throttled calls, each running at most "
        f"{measured.get('timeoutSeconds', 900)} s.",
        "before": {"reservedConcurrentExecutions": 0},
        "after": {"reservedConcurrentExecutions": proposed},
        "rollback": {
            "api": "lambda:PutFunctionConcurrency",
            "parameters": {"FunctionName": function_name, "ReservedConcurrentExecutions": 0},
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
    if reserved == 0:
        evidence.append("A reservation of 0 throttles every call: someone throttled the function on purpose, or by mistake.")
        action = _restore_reservation(function_name, account, measured, config)
    else:
        action = _raise_reservation(function_name, reserved, account, config) if reserved is not None else None
    if action is not None:
        return {
            "case": "function-level",
            "summary": f"{function_name} is throttled at its reserved concurrency of {reserved}.",
            "actions": [action],
            "evidence": evidence,
            "recommendations": RECOMMENDATIONS,
        }
    exhausted = (
        f"{function_name} is throttled because the account's concurrency is exhausted "
        f"(limit {account['concurrentExecutions']}, unreserved {account['unreservedConcurrentExecutions']})"
    )
    opened = measured.get("openQuotaRequest")
    if opened:
        # One open request per quota: a second one would fail, so the run follows the open one instead.
        return {
            "case": "quota-request-open",
            "summary": f"{exhausted}; a concurrency quota increase to {opened['desiredValue']} is already requested "
            f"(request {opened['id']}, {opened['status']}"
            + (f", support case {opened['caseId']}" if opened.get("caseId") else "")
            + "): follow that request in the Service Quotas console; nothing new is requested.",
            "actions": [],
            "evidence": evidence,
            "recommendations": RECOMMENDATIONS,
        }
    return {
        "case": "account-level",
        "summary": exhausted + ". AWS reviews a quota increase, often through a support case: the run ends escalated "
        "with the request to follow unless AWS grants it at once.",
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
    result["timeoutSeconds"] = int(client("lambda").get_function_configuration(FunctionName=event["functionName"])["Timeout"])
    result["openQuotaRequest"] = open_quota_request(client("service-quotas"))
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
