"""The watchdog for stuck executions (runbook: "alarm for executions in RUNNING state > 15 minutes").

`publish_handler` runs on a schedule and publishes how many executions of the pipeline's workflow have been RUNNING
longer than the threshold; an alarm on that metric goes to ALARM, and its state-change event reaches
`fan_out_handler`, which starts one execution-stuck playbook run per long-running execution.

No duplicates: each run is named after the execution it handles and the alarm event that asked for it
(`stuck-<name>-<hash of the execution>-<hash of the event>`). Step Functions refuses a second execution of a name it
has used (`ExecutionAlreadyExists`: always once the first has closed, for 90 days), so the same event delivered again
starts nothing. A later alarm is another event and starts a fresh run: a run named after the execution alone would
have made every later alarm for it `ExecutionAlreadyExists` for 90 days, even after that run was rejected, expired or
failed. Should two runs for one execution run at once, the playbook's lock ends the second with `already-running`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shared import clock
from shared.aws import client

logger = Logger()

METRIC_NAME = "LongRunningExecutions"


def long_running(sfn: Any, state_machine_arn: str, threshold_minutes: int, now: datetime) -> list[dict[str, Any]]:
    cutoff = now - timedelta(minutes=threshold_minutes)
    found = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page["executions"]:
            if execution["startDate"] <= cutoff:
                minutes = int((now - execution["startDate"]).total_seconds() // 60)
                found.append({"executionArn": execution["executionArn"], "name": execution["name"], "runningMinutes": minutes})
    return sorted(found, key=lambda item: -item["runningMinutes"])


def publish(cloudwatch: Any, namespace: str, state_machine_name: str, count: int, now: datetime) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": METRIC_NAME,
                "Dimensions": [{"Name": "StateMachineName", "Value": state_machine_name}],
                "Timestamp": now,
                "Value": float(count),
                "Unit": "Count",
            }
        ],
    )


def run_name(execution_arn: str, alarm_event: str) -> str:
    """The playbook run's name for one stuck execution and one alarm event: readable, within 80 characters, the same
    for every delivery of that event."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", execution_arn.rsplit(":", 1)[-1])[:51]
    return f"stuck-{name}-{_digest(execution_arn)}-{_digest(alarm_event)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def fan_out(
    sfn: Any, playbook_arn: str, executions: list[dict[str, Any]], started_by: dict[str, Any], alarm_event: str
) -> dict[str, list[str]]:
    started, skipped = [], []
    for execution in executions:
        document = {"executionArn": execution["executionArn"], "startedBy": started_by | {"runningMinutes": execution["runningMinutes"]}}
        try:
            response = sfn.start_execution(
                stateMachineArn=playbook_arn, name=run_name(execution["executionArn"], alarm_event), input=json.dumps(document)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            skipped.append(execution["executionArn"])
            continue
        started.append(response["executionArn"])
    return {"started": started, "alreadyHandled": skipped}


@logger.inject_lambda_context
def publish_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    workflow = os.environ["ETL_STATE_MACHINE_ARN"]
    now = clock.now()
    found = long_running(client("stepfunctions"), workflow, int(os.environ["STUCK_THRESHOLD_MINUTES"]), now)
    publish(client("cloudwatch"), os.environ["METRIC_NAMESPACE"], workflow.rsplit(":", 1)[-1], len(found), now)
    logger.info("published long-running executions", extra={"count": len(found), "executions": [e["name"] for e in found]})
    return {"longRunning": len(found)}


@logger.inject_lambda_context
def fan_out_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    started_by = {"kind": "watchdog", "alarm": str(detail.get("alarmName", "")), "time": str(event.get("time", ""))}
    found = long_running(
        client("stepfunctions"), os.environ["ETL_STATE_MACHINE_ARN"], int(os.environ["STUCK_THRESHOLD_MINUTES"]), clock.now()
    )
    # EventBridge delivers an event again (a rule retry) with its id: the id names one alarm's request
    alarm_event = str(event.get("id") or (detail.get("state") or {}).get("timestamp") or event.get("time", ""))
    result = fan_out(client("stepfunctions"), os.environ["PLAYBOOK_STATE_MACHINE_ARN"], found, started_by, alarm_event)
    logger.info("started playbook runs", extra={"started": len(result["started"]), "alreadyHandled": len(result["alreadyHandled"])})
    return result
