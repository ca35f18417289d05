"""S3 event loop playbook (runbook "S3 Event Loop (Infinite Triggering)"): measure, classify, stop at scale, verify.

The reads and changes that are one API call (DescribeRule, DescribeAlarms, DisableRule, PutRule, EnableRule,
PutMetricAlarm) are direct AWS SDK tasks in the state machine; this module holds what needs logic: the start rate,
the repeating object keys, whether the rule's pattern admits the processed bucket, the two-phase plan, the bulk
stopper and the verification.

The stopper, not a Distributed Map: stopping is one small call per execution, bounded by one account-wide quota
(StopExecution: bucket 1,000, refill 200/s in us-east-1, 25/s in smaller regions). One Lambda with a pool of workers
behind one adaptive client-side token bucket keeps every call inside that quota, retries what is throttled and
reports progress, at one state transition per round instead of one per execution (a Distributed Map over 10,000
items is 10,000+ transitions and child executions whose concurrent StopExecution calls no one paces). A round lists
what is RUNNING now, so a rerun or a next round stops only what is still running.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError

from shared import clock, metrics
from shared.aws import client

logger = Logger()

INCOMING_PREFIX = "incoming/"
STOP_CAUSE = "Event loop mitigation"
THROTTLING = {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "Throttling"}
MAX_ATTEMPTS_PER_EXECUTION = 8
LIST_PAGE_SIZE = 1000  # ListExecutions' largest page
# An execution that ends by itself closes with one of these; one we stop is ABORTED.
FINISHED_ON_THEIR_OWN = ("SUCCEEDED", "FAILED", "TIMED_OUT")
# The verification lists at most this many pages (ListExecutions: bucket 200, 5 per second in us-east-1).
VERIFY_MAX_PAGES = 20
# Stop starting new work when less than this is left of the invocation; the state machine starts another round.
ROUND_MARGIN_SECONDS = 30.0
RATE_WINDOW_MINUTES = 10
# Our own bucket keys, never the workflow's output: used to ask EventBridge whether a pattern admits a bucket.
PROBE_KEYS = ("processed/probe.csv", "incoming/probe.csv", "probe.csv")

RECOMMENDATIONS = [
    "Write the workflow's output only to the processed bucket (or a processed/ prefix the rule cannot match).",
    "Turn off EventBridge notifications on the processed bucket unless another consumer needs them.",
    "Keep the execution-rate alarm (ExecutionsStarted > threshold per minute for 2 minutes) wired to this playbook.",
    "Check Cost Explorer for the S3 PutObject and Step Functions transitions the loop caused.",
]


def fixed_pattern(raw_bucket: str) -> dict[str, Any]:
    """The runbook's fixed pattern: only new objects under incoming/ in the raw bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [raw_bucket]}, "object": {"key": [{"prefix": INCOMING_PREFIX}]}},
    }


def s3_event(bucket: str, key: str, region: str, account: str) -> dict[str, Any]:
    """An 'Object Created' event as S3 sends it to EventBridge."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": "2024-01-01T00:00:00Z",
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1}, "reason": "PutObject"},
    }


def object_of(execution_input: str | None) -> tuple[str, str] | None:
    """(bucket, key) of the S3 event an execution was started with, if it was."""
    try:
        detail = (json.loads(execution_input or "{}") or {}).get("detail") or {}
        return str(detail["bucket"]["name"]), str(detail["object"]["key"])
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------- diagnose
def start_rate(cloudwatch: Any, state_machine_arn: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    points = metrics.datapoints(cloudwatch, "AWS/States", "ExecutionsStarted", {"StateMachineArn": state_machine_arn}, start, end, 60)
    return [{"minute": clock.iso(p["Timestamp"]), "started": int(p["Sum"])} for p in points]


def count_running(sfn: Any, state_machine_arn: str) -> int:
    total = 0
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING", PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    ):
        total += len(page["executions"])
    return total


def recent_objects(sfn: Any, state_machine_arn: str, sample: int) -> list[tuple[str, str]]:
    """The objects the most recent `sample` executions were started for (from their inputs)."""
    listed = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=sample)["executions"]
    found = []
    for item in listed:
        obj = object_of(sfn.describe_execution(executionArn=item["executionArn"]).get("input"))
        if obj is not None:
            found.append(obj)
    return found


def eventbridge_enabled(s3: Any, bucket: str) -> bool | None:
    """Whether the bucket sends its events to EventBridge (None if the bucket cannot be read)."""
    try:
        return "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)
    except ClientError:
        return None


def admits(events: Any, pattern: str, bucket: str, keys: list[str], region: str, account: str) -> list[str]:
    """The keys of `bucket` (ours and observed) whose 'Object Created' events the pattern lets through."""
    admitted = []
    for key in dict.fromkeys([*PROBE_KEYS, *keys]):
        event = json.dumps(s3_event(bucket, key, region, account))
        if events.test_event_pattern(EventPattern=pattern, Event=event)["Result"]:
            admitted.append(key)
    return admitted


def diagnose(
    cloudwatch: Any,
    sfn: Any,
    s3: Any,
    events: Any,
    *,
    state_machine_arn: str,
    pattern: str,
    raw_bucket: str,
    processed_bucket: str,
    config: dict[str, Any],
    end: datetime,
) -> dict[str, Any]:
    region, account = state_machine_arn.split(":")[3:5]
    rate = start_rate(cloudwatch, state_machine_arn, end - timedelta(minutes=RATE_WINDOW_MINUTES), end)
    objects = recent_objects(sfn, state_machine_arn, config["keySampleSize"])
    repeats = Counter(f"{bucket}/{key}" for bucket, key in objects)
    processed_keys = sorted({key for bucket, key in objects if bucket == processed_bucket})[:20]
    raw_outside_incoming = [key for key in dict.fromkeys(k for b, k in objects if b == raw_bucket) if not key.startswith(INCOMING_PREFIX)]
    return {
        "window": {"start": clock.iso(end - timedelta(minutes=RATE_WINDOW_MINUTES)), "end": clock.iso(end)},
        "startedPerMinute": rate,
        "peakPerMinute": max((point["started"] for point in rate), default=0),
        "running": count_running(sfn, state_machine_arn),
        "sampled": len(objects),
        "fromProcessedBucket": sum(1 for bucket, _ in objects if bucket == processed_bucket),
        "repeatingKeys": [{"object": name, "executions": n} for name, n in repeats.most_common(10) if n >= config["loopKeyRepeats"]],
        "admitsProcessedBucket": admits(events, pattern, processed_bucket, processed_keys, region, account),
        "admitsRawOutsideIncoming": admits(events, pattern, raw_bucket, raw_outside_incoming[:20], region, account)
        if raw_outside_incoming
        else [],
        "eventBridgeNotifications": {
            raw_bucket: eventbridge_enabled(s3, raw_bucket),
            processed_bucket: eventbridge_enabled(s3, processed_bucket),
        },
    }


# ---------------------------------------------------------------------------------------------- plan
def _subplan(case: str, summary: str, actions: list[dict[str, Any]], evidence: list[str]) -> dict[str, Any]:
    return {"case": case, "summary": summary, "actions": actions, "evidence": evidence, "recommendations": []}


def pattern_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The pattern change as a unified diff of the indented JSON ('-' removed, '+' added), for the approver."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines()
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    return [line for line in difflib.unified_diff(old, new, "current", "fixed", n=1, lineterm="") if not line.startswith(("---", "+++"))]


def plan(target: dict[str, Any], findings: dict[str, Any], config: dict[str, Any], pipeline: dict[str, str]) -> dict[str, Any]:
    rule_name = target["ruleName"]
    rule = findings["rule"]
    measured = findings["measured"]
    current = json.loads(rule["eventPattern"])
    fixed = fixed_pattern(pipeline["rawBucket"])
    threshold = config["executionRateThreshold"]
    processed = pipeline["processedBucket"]
    alarm_exists = bool(findings["alarm"]["alarms"])
    evidence = [
        f"Executions started per minute (last {RATE_WINDOW_MINUTES} minutes): "
        + (", ".join(str(p["started"]) for p in measured["startedPerMinute"]) or "no datapoints")
        + f"; peak {measured['peakPerMinute']} (threshold {threshold}).",
        f"RUNNING executions of {target['stateMachineName']}: {measured['running']}.",
        f"Of the {measured['sampled']} most recent executions, {measured['fromProcessedBucket']} were started by objects in {processed}.",
        "Repeating object keys: "
        + (", ".join(f"{k['object']} x{k['executions']}" for k in measured["repeatingKeys"]) or "none")
        + f" (a key counts from {config['loopKeyRepeats']} executions).",
        f"Rule {rule_name} ({rule['state']}) pattern: {json.dumps(current, sort_keys=True)}.",
        f"The pattern admits {processed}: "
        + ("yes (" + ", ".join(measured["admitsProcessedBucket"]) + ")" if measured["admitsProcessedBucket"] else "no")
        + ".",
        "EventBridge notifications: "
        + ", ".join(f"{b}: {'on' if on else 'off' if on is False else 'unknown'}" for b, on in measured["eventBridgeNotifications"].items())
        + ".",
        f"Execution-rate alarm {pipeline['alarmName']}: {'exists' if alarm_exists else 'missing'}.",
    ]
    if measured["admitsRawOutsideIncoming"]:
        evidence.append(
            f"The pattern also admits raw-bucket keys outside {INCOMING_PREFIX}: {', '.join(measured['admitsRawOutsideIncoming'])}."
        )
    looping = bool(measured["repeatingKeys"]) or bool(measured["admitsProcessedBucket"])
    spiking = measured["peakPerMinute"] > threshold
    common = {"evidence": evidence, "recommendations": RECOMMENDATIONS if looping else []}
    if not looping:
        case = "traffic-spike" if spiking else "no-spike"
        summary = (
            f"A genuine traffic spike: {measured['peakPerMinute']} executions per minute for distinct objects, and the rule admits "
            f"only {pipeline['rawBucket']}; nothing to contain."
            if spiking
            else f"No loop and no spike: at most {measured['peakPerMinute']} executions per minute (threshold {threshold})."
        )
        return {"case": case, "summary": summary, "actions": [], "containment": None, "fix": None, "rule": None, "alarm": None} | common

    containment: list[dict[str, Any]] = []
    if rule["state"] == "ENABLED":
        containment.append(
            {
                "id": "disable_rule",
                "api": "events:DisableRule",
                "target": rule_name,
                "description": f"Disable the EventBridge rule {rule_name} (breaks the event chain), then wait {config['drainSeconds']} s for in-flight executions.",
                "before": {"state": "ENABLED"},
                "after": {"state": "DISABLED"},
                "rollback": {"api": "events:EnableRule", "parameters": {"Name": rule_name}},
            }
        )
    # Always proposed: it stops only what is RUNNING when it runs, and the containment plan is never empty.
    containment.append(
        {
            "id": "stop_running_executions",
            "api": "states:StopExecution",
            "target": target["stateMachineName"],
            "description": f"Stop every RUNNING execution of {target['stateMachineName']} (now {measured['running']}) "
            f"with the cause {STOP_CAUSE!r}, paced to the StopExecution quota.",
            "before": {"running": measured["running"]},
            "after": {"running": 0, "cause": STOP_CAUSE},
            "rollback": None,
        }
    )
    fix: list[dict[str, Any]] = []
    if current != fixed:
        fix.append(
            {
                "id": "restrict_rule_pattern",
                "api": "events:PutRule",
                "target": rule_name,
                "description": f"Restrict {rule_name} to {pipeline['rawBucket']} objects under {INCOMING_PREFIX} (the rule stays disabled until re-enabled).",
                "before": {"eventPattern": current},
                "after": {"eventPattern": fixed, "state": "DISABLED"},
                # PutRule without State enables the rule: the rollback names the state the rule had before the run
                "rollback": {
                    "api": "events:PutRule",
                    "parameters": {"Name": rule_name, "EventPattern": json.dumps(current), "State": rule["state"]},
                },
            }
        )
    fix.append(
        {
            "id": "enable_rule",
            "api": "events:EnableRule",
            "target": rule_name,
            "description": f"Re-enable {rule_name} with the fixed pattern.",
            "before": {"state": "DISABLED"},
            "after": {"state": "ENABLED"},
            "rollback": {"api": "events:DisableRule", "parameters": {"Name": rule_name}},
        }
    )
    if not alarm_exists:
        fix.append(
            {
                "id": "create_execution_rate_alarm",
                "api": "cloudwatch:PutMetricAlarm",
                "target": pipeline["alarmName"],
                "description": f"Create the alarm {pipeline['alarmName']}: ExecutionsStarted > {threshold} per minute for 2 minutes.",
                "before": {"exists": False},
                "after": {"exists": True, "threshold": threshold, "periodSeconds": 60, "evaluationPeriods": 2},
                "rollback": {"api": "cloudwatch:DeleteAlarms", "parameters": {"AlarmNames": [pipeline["alarmName"]]}},
            }
        )
    cause = "the rule admits the processed bucket" if measured["admitsProcessedBucket"] else "object keys repeat"
    summary = f"An event loop on {target['stateMachineName']}: {cause}; {measured['running']} executions are RUNNING."
    diff = pattern_diff(current, fixed)
    return {
        "case": "event-loop",
        "summary": summary,
        "actions": containment + fix,
        "containment": _subplan("event-loop-containment", "Step 1 of 2, contain the loop: " + summary, containment, evidence),
        "fix": _subplan(
            "event-loop-fix",
            f"Step 2 of 2, fix the rule {rule_name} and re-enable it. The loop is contained; the pattern changes as the diff shows.",
            fix,
            [f"Pattern diff: {line}" for line in diff] + evidence,
        ),
        # PutRule replaces the description too: keep the rule's own (DescribeRule leaves the field out when it has none)
        "rule": {"fixedPattern": json.dumps(fixed), "description": (rule.get("described") or {}).get("Description", "")},
        "alarm": {"name": pipeline["alarmName"], "stateMachineArn": pipeline["stateMachineArn"], "threshold": threshold},
    } | common


# ---------------------------------------------------------------------------------------------- stop at scale
class Pacer:
    """A client-side token bucket shared by the stopping workers, adapting to throttling.

    It starts as the quota (burst, refill per second); a throttled call cuts the rate (at most once per second,
    since every in-flight call sees the same empty bucket) to 70% and drops the tokens; each success recovers 1% of the
    target rate. Only the pacer sleeps, on `clock`, so simulated time stays one timeline.
    """

    def __init__(self, rate: float, burst: float, floor: float = 1.0):
        self.target = rate
        self.rate = rate
        self.burst = burst
        self.floor = floor
        self.tokens = burst
        self.last = clock.monotonic()
        self.last_cut = float("-inf")
        self.throttles = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            self._refill()
            if self.tokens < 1:
                clock.sleep((1 - self.tokens) / self.rate)
                self._refill()
            self.tokens -= 1

    def _refill(self) -> None:
        now = clock.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1
            now = clock.monotonic()
            if now - self.last_cut >= 1.0:
                self.last_cut = now
                self.rate = max(self.floor, self.rate * 0.7)
                self.tokens = min(self.tokens, 0.0)

    def succeeded(self) -> None:
        with self._lock:
            self.rate = min(self.target, self.rate + self.target * 0.01)


def _list_page(sfn: Any, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One ListExecutions page and the calls it took; retries throttled calls."""
    for attempt in range(MAX_ATTEMPTS_PER_EXECUTION):
        try:
            return sfn.list_executions(**params), attempt + 1
        except ClientError as error:
            if error.response["Error"]["Code"] not in THROTTLING or attempt == MAX_ATTEMPTS_PER_EXECUTION - 1:
                raise
            clock.sleep(min(0.2 * 2**attempt, 5.0))  # ListExecutions refills at 5 calls per second
    raise AssertionError("unreachable")


def list_running(sfn: Any, state_machine_arn: str) -> tuple[list[dict[str, Any]], int]:
    """Every RUNNING execution (all pages), and the number of ListExecutions calls."""
    found: list[dict[str, Any]] = []
    calls = 0
    token: str | None = None
    while True:
        params: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": "RUNNING", "maxResults": LIST_PAGE_SIZE}
        if token:
            params["nextToken"] = token
        page, spent = _list_page(sfn, params)
        calls += spent
        found += page["executions"]
        token = page.get("nextToken")
        if not token:
            return found, calls


def finished_meanwhile(sfn: Any, state_machine_arn: str, candidates: set[str], listed_at: datetime) -> tuple[set[str], int]:
    """Which of `candidates` ended on their own (SUCCEEDED, FAILED, TIMED_OUT) since `listed_at`, and the calls it took.

    StopExecution answers an execution that has already ended as if it stopped it, so its success proves nothing:
    the statuses are read. Closed executions are listed by stop date, most recent first, so each status is read
    only back to `listed_at`.
    """
    found: set[str] = set()
    calls = 0
    for status in FINISHED_ON_THEIR_OWN:
        token: str | None = None
        for _ in range(VERIFY_MAX_PAGES):
            params: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": status, "maxResults": LIST_PAGE_SIZE}
            if token:
                params["nextToken"] = token
            page, spent = _list_page(sfn, params)
            calls += spent
            recent = [item for item in page["executions"] if item.get("stopDate", listed_at) >= listed_at]
            found |= {item["executionArn"] for item in recent} & candidates
            token = page.get("nextToken")
            if not token or len(recent) < len(page["executions"]):
                break
    return found, calls


def stop_running(
    sfn: Any,
    state_machine_arn: str,
    *,
    concurrency: int,
    rate: float,
    burst: float,
    seconds_left: Any,
    cause: str = STOP_CAUSE,
) -> dict[str, Any]:
    """One round: list what is RUNNING now, stop it in parallel within the quota, report what happened.

    `seconds_left()` says how long the caller may still run; the round stops taking new work before it runs out.
    """
    started = clock.monotonic()
    running, list_calls = list_running(sfn, state_machine_arn)
    arns = [item["executionArn"] for item in running]
    # Calls paced in order can reach the service out of order: leave one token per worker in the service's bucket.
    pacer = Pacer(rate, max(1.0, burst - concurrency))
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    answered: set[str] = set()

    def stop_one(arn: str) -> None:
        result = "left"
        for _ in range(MAX_ATTEMPTS_PER_EXECUTION):
            if seconds_left() < ROUND_MARGIN_SECONDS:
                break
            pacer.acquire()
            with lock:
                counts["calls"] += 1
            try:
                sfn.stop_execution(executionArn=arn, cause=cause)
                pacer.succeeded()
                result = "stopped"
                with lock:
                    answered.add(arn)
                break
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code in THROTTLING:
                    pacer.throttled()
                    continue
                if code == "ExecutionDoesNotExist":
                    result = "gone"
                    break
                raise
        with lock:
            counts[result] += 1
            done = counts["stopped"] + counts["gone"]
            if done and done % 1000 == 0:
                logger.info(
                    "stopping executions", extra={"done": done, "of": len(arns), "throttles": pacer.throttles, "rate": round(pacer.rate, 1)}
                )

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        # Each worker carries the invocation's context (logger keys, tracing) into its thread.
        futures = [pool.submit(contextvars.copy_context().run, stop_one, arn) for arn in arns]
        for future in futures:
            future.result()
    # Every listed execution had started by the listing: the latest start is a moment no later than the listing.
    listed_at = max((item["startDate"] for item in running), default=None)
    finished, read_calls = finished_meanwhile(sfn, state_machine_arn, answered, listed_at) if answered and listed_at else (set(), 0)
    return {
        "listed": len(arns),
        "stopped": counts["stopped"] - len(finished),
        "finishedMeanwhile": counts["gone"] + len(finished),
        "left": counts["left"],
        "throttled": pacer.throttles,
        "apiCalls": list_calls + counts["calls"] + read_calls,
        "seconds": round(clock.monotonic() - started, 2),
    }


def next_round(previous: dict[str, Any], round_result: dict[str, Any]) -> dict[str, Any]:
    """Totals over rounds; `done` when a round found nothing left to stop."""
    totals = {key: previous.get(key, 0) + round_result[key] for key in ("stopped", "finishedMeanwhile", "throttled", "apiCalls", "seconds")}
    return totals | {
        "round": previous.get("round", 0) + 1,
        "lastListed": round_result["listed"],
        "left": round_result["left"],
        "done": round_result["listed"] == 0,
    }


# ---------------------------------------------------------------------------------------------- verify
def _sort_date(item: dict[str, Any]) -> datetime:
    """ListExecutions' documented order: a RUNNING execution by its start date, a closed one by its stop date."""
    return item["startDate"] if item["status"] == "RUNNING" or "stopDate" not in item else item["stopDate"]


def started_since(
    sfn: Any, state_machine_arn: str, since: datetime, max_pages: int = VERIFY_MAX_PAGES
) -> tuple[list[dict[str, Any]], bool]:
    """Executions started at or after `since`, and whether that is all of them.

    ListExecutions lists the most recent first, RUNNING executions by start date and closed ones by stop date: an
    execution that started before `since` and stopped after it comes early, so it is skipped, not taken as the end.
    The listing ends at the first execution whose sort date is before `since` (every later one started before it);
    after `max_pages` pages it stops, and the list is a lower bound. The list is eventually consistent: the newest
    starts may be missing for a while, which the execution-rate metric does not depend on.
    """
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        page = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=LIST_PAGE_SIZE, **({"nextToken": token} if token else {}))
        for item in page["executions"]:
            if _sort_date(item) < since:
                return found, True
            if item["startDate"] >= since:
                found.append(item)
        token = page.get("nextToken")
        if not token:
            return found, True
    return found, False


def evenly(items: list[Any], size: int) -> list[Any]:
    """At most `size` items spread evenly over the list, the first and the last among them (all when there are no more)."""
    if len(items) <= size:
        return list(items)
    if size == 1:
        return items[:1]
    return [items[round(i * (len(items) - 1) / (size - 1))] for i in range(size)]


def peak_per_minute(items: list[dict[str, Any]]) -> int:
    minutes = Counter(item["startDate"].replace(second=0, microsecond=0) for item in items)
    return max(minutes.values(), default=0)


def verify(
    cloudwatch: Any,
    sfn: Any,
    *,
    state_machine_arn: str,
    processed_bucket: str,
    threshold: int,
    since: datetime,
    end: datetime,
    sample_size: int,
) -> dict[str, Any]:
    """Did the loop stop? The start rate (metric and listing) must be at or under the threshold, and none of a bounded
    sample of the executions started since the fix may come from an object in the processed bucket.

    A bounded number of calls whatever the loop does: at most VERIFY_MAX_PAGES ListExecutions pages and `sample_size`
    DescribeExecution calls (DescribeExecution's bucket is 300 with 15 per second in us-east-1: describing every
    execution of a loop that keeps starting thousands would outlast the function's timeout).
    """
    end = max(end, since + timedelta(seconds=60))
    rate = start_rate(cloudwatch, state_machine_arn, since, end)
    started, complete = started_since(sfn, state_machine_arn, since)
    peak = max(max((point["started"] for point in rate), default=0), peak_per_minute(started))
    sample = evenly(started, sample_size)
    from_processed = 0
    for item in sample:
        obj = object_of(sfn.describe_execution(executionArn=item["executionArn"]).get("input"))
        if obj is not None and obj[0] == processed_bucket:
            from_processed += 1
    return {
        "since": clock.iso(since),
        "until": clock.iso(end),
        "peakPerMinute": peak,
        "threshold": threshold,
        "startedSince": len(started),
        "listedAll": complete,
        "sampled": len(sample),
        "startedByProcessedObjects": from_processed,
        "stopped": peak <= threshold and from_processed == 0 and complete,
    }


# ---------------------------------------------------------------------------------------------- handlers
def pipeline() -> dict[str, str]:
    return {
        "stateMachineArn": os.environ["ETL_STATE_MACHINE_ARN"],
        "rawBucket": os.environ["RAW_BUCKET"],
        "processedBucket": os.environ["PROCESSED_BUCKET"],
        "alarmName": os.environ.get("EXECUTION_RATE_ALARM", ""),
    }


def _sfn_without_retries() -> Any:
    """The stopper paces and retries itself; the SDK's own retries would sleep behind its back."""
    return boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 1}))  # type: ignore[call-overload]


@logger.inject_lambda_context
def diagnose_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    where = pipeline()
    result = diagnose(
        client("cloudwatch"),
        client("stepfunctions"),
        client("s3"),
        client("events"),
        state_machine_arn=where["stateMachineArn"],
        pattern=event["rule"]["eventPattern"],
        raw_bucket=where["rawBucket"],
        processed_bucket=where["processedBucket"],
        config=event["config"],
        end=clock.now(),
    )
    logger.info(
        "measured the loop",
        extra={"peak": result["peakPerMinute"], "running": result["running"], "repeating": len(result["repeatingKeys"])},
    )
    return result


@logger.inject_lambda_context
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(event["target"], event["findings"], event["config"], pipeline())
    logger.info("proposed plan", extra={"case": result["case"], "actions": [a["id"] for a in result["actions"]]})
    return result


@logger.inject_lambda_context
def stop_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = event["config"]
    round_result = stop_running(
        _sfn_without_retries(),
        pipeline()["stateMachineArn"],
        concurrency=config["stopConcurrency"],
        rate=config["stopRatePerSecond"],
        burst=config["stopBurst"],
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    result = next_round(event.get("previous") or {}, round_result)
    logger.info("stop round finished", extra=result)
    return result


@logger.inject_lambda_context
def verify_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    where = pipeline()
    result = verify(
        client("cloudwatch"),
        client("stepfunctions"),
        state_machine_arn=where["stateMachineArn"],
        processed_bucket=where["processedBucket"],
        threshold=int(event["config"]["executionRateThreshold"]),
        since=clock.parse(event["since"]),
        end=clock.now(),
        sample_size=int(event["config"]["verifySampleSize"]),
    )
    logger.info(
        "verified",
        extra={
            "peak": result["peakPerMinute"],
            "started": result["startedSince"],
            "sampled": result["sampled"],
            "fromProcessed": result["startedByProcessedObjects"],
        },
    )
    return result
