"""First state of every playbook: turn the trigger (alarm event or console input) into one validated input.

Bad input fails here with `InvalidInput` and a message naming every problem, before anything is read or changed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

import denied_message
from shared import clock
from shared.errors import InvalidInput
from shared.schemas import errors

logger = Logger()

CONFIG_DEFAULTS: dict[str, Any] = {
    "approvalTimeoutSeconds": 3600,
    "verifyWaitSeconds": 300,
    "grantPropagationSeconds": 300,
    # access-denied: after the change, check it this often until it shows, and give up after this long.
    "grantCheckPollSeconds": 30,
    "grantCheckDeadlineSeconds": 900,
    # Asynchronous updates (Lambda configuration, DynamoDB UpdateTable): poll this often, give up after this long.
    "settlePollSeconds": 20,
    "settleTimeoutSeconds": 900,
    "lockTtlSeconds": 7200,
    "lookbackMinutes": 60,
    "maxReservedConcurrency": 1000,
    "concurrencyIncreaseFactor": 2,
    # cost-spike
    "costLookbackDays": 7,
    "usageLookbackHours": 24,
    "memoryHeadroomPercent": 30,
    "logRetentionDays": 7,
    "minMonthlySavingUsd": 1.0,
    "runawayExecutionsPerMinute": 100,
    # event-loop
    "drainSeconds": 300,
    "executionRateThreshold": 200,
    "keySampleSize": 100,
    "verifySampleSize": 100,
    "loopKeyRepeats": 3,
    "stopConcurrency": 16,
    "stopRatePerSecond": 200,
    "stopBurst": 1000,
    "stopMaxRounds": 10,
}
# Deployment parameters that override the defaults above (environment variable -> config key).
CONFIG_FROM_ENV = {
    "APPROVAL_TIMEOUT_SECONDS": "approvalTimeoutSeconds",
    "MAX_RESERVED_CONCURRENCY": "maxReservedConcurrency",
    "EXECUTION_RATE_THRESHOLD": "executionRateThreshold",
    "STOP_EXECUTION_RATE": "stopRatePerSecond",
    "STOP_EXECUTION_BURST": "stopBurst",
}
ALARM_EVENT = "CloudWatch Alarm State Change"


def pipeline_functions() -> list[str]:
    return [name for name in os.environ.get("PIPELINE_FUNCTIONS", "").split(",") if name]


def throttling_input_from_alarm(event: dict[str, Any]) -> dict[str, Any]:
    """The console-input equivalent of LambdaThrottlingAlarm's state change: its metric's FunctionName."""
    detail = event.get("detail") or {}
    for metric in (detail.get("configuration") or {}).get("metrics") or []:
        dimensions = ((metric.get("metricStat") or {}).get("metric") or {}).get("dimensions") or {}
        if "FunctionName" in dimensions:
            return {"functionName": dimensions["FunctionName"]}
    raise InvalidInput(f"alarm {detail.get('alarmName', '?')!r} has no FunctionName dimension to act on")


def throttling_target(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    function_name = document["functionName"]
    allowed = pipeline_functions()
    if function_name not in allowed:
        raise InvalidInput(f"functionName {function_name!r} is not one of the pipeline's functions {allowed}")
    return {"functionName": function_name}, function_name


# ------ execution-stuck
CONFIG_DEFAULTS |= {"stuckThresholdMinutes": 15, "reprocessPollSeconds": 30, "reprocessDeadlineSeconds": 900}
CONFIG_FROM_ENV |= {"STUCK_THRESHOLD_MINUTES": "stuckThresholdMinutes"}


def stuck_target(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """An execution of the pipeline's workflow, by ARN or by bare name (resolved against the workflow)."""
    workflow = os.environ.get("ETL_STATE_MACHINE_ARN", "")
    value = document["executionArn"]
    if value.startswith("arn:"):
        prefix, name = value.rsplit(":", 1)
        machine = prefix.replace(":execution:", ":stateMachine:", 1)
        if machine != workflow:
            raise InvalidInput(f"executionArn {value!r} is not an execution of the pipeline's workflow {workflow}")
        arn = value
    else:
        name = value
        arn = workflow.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    # The name first: reports are titled by the target's values, and e-mail subjects are short.
    return {"executionName": name, "executionArn": arn, "stateMachineArn": workflow}, arn


# ------ cost-spike
def cost_target(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The pipeline's budget: the only scope the cost-spike playbook examines (one run at a time)."""
    budget = os.environ.get("COST_BUDGET_NAME", "")
    named = document.get("budgetName", budget)
    if not budget or named != budget:
        raise InvalidInput(f"budgetName {named!r} is not the pipeline's budget {budget!r}")
    return {"budgetName": budget}, budget


# ------------------------------------------------------------------------------------ playbook: access-denied
def access_denied_input_from_alarm(event: dict[str, Any]) -> dict[str, Any]:
    """AccessDeniedAlarm counts denied lines but names none: the playbook reads the latest one from the logs."""
    return {}


def access_denied_target(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Runs are locked per role (they write the role's one playbook policy); the role comes from the message."""
    message = document.get("message")
    if message is None:
        return {"source": "latest access-denied line in the pipeline's logs"}, "pipeline-logs"
    try:
        role = denied_message.parse(message)["principal"].get("roleName") or "not-a-role"
    except denied_message.Unparseable:
        role = "unreadable-message"
    target = {"role": role, "message": message}
    if "failedExecutionArn" in document:
        # only a run of the pipeline's own workflow may be restarted: refuse any other state machine's up front
        workflow = os.environ.get("ETL_STATE_MACHINE_ARN", "")
        if not document["failedExecutionArn"].startswith(workflow.replace(":stateMachine:", ":execution:", 1) + ":"):
            raise InvalidInput(
                f"failedExecutionArn {document['failedExecutionArn']!r} is not an execution of the pipeline's workflow {workflow}"
            )
        target["failedExecutionArn"] = document["failedExecutionArn"]
    return target, role


# ------------------------------------------------------------------ event-loop
def event_loop_input_from_alarm(event: dict[str, Any]) -> dict[str, Any]:
    """The console-input equivalent of the execution-rate alarm's state change: its metric's StateMachineArn."""
    detail = event.get("detail") or {}
    for metric in (detail.get("configuration") or {}).get("metrics") or []:
        dimensions = ((metric.get("metricStat") or {}).get("metric") or {}).get("dimensions") or {}
        if "StateMachineArn" in dimensions:
            return {"stateMachineName": str(dimensions["StateMachineArn"]).rsplit(":", 1)[-1]}
    raise InvalidInput(f"alarm {detail.get('alarmName', '?')!r} has no StateMachineArn dimension to act on")


def event_loop_target(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    workflow, rule = os.environ.get("ETL_STATE_MACHINE", ""), os.environ.get("ETL_EVENT_RULE", "")
    if document["stateMachineName"] != workflow:
        raise InvalidInput(f"stateMachineName {document['stateMachineName']!r} is not the pipeline's workflow {workflow!r}")
    if document.get("ruleName", rule) != rule:
        raise InvalidInput(f"ruleName {document['ruleName']!r} is not the pipeline's rule {rule!r}")
    return {"stateMachineName": workflow, "ruleName": rule}, workflow


# Per playbook: how an alarm event becomes console input, and which resource the input targets (and locks).
ALARM_INPUT = {
    "lambda-throttling": throttling_input_from_alarm,
    "access-denied": access_denied_input_from_alarm,
    "event-loop": event_loop_input_from_alarm,
}
TARGET = {
    "lambda-throttling": throttling_target,
    "execution-stuck": stuck_target,
    "cost-spike": cost_target,
    "access-denied": access_denied_target,
    "event-loop": event_loop_target,
}


def deployment_config() -> dict[str, Any]:
    config = dict(CONFIG_DEFAULTS)
    for variable, key in CONFIG_FROM_ENV.items():
        if os.environ.get(variable):
            config[key] = int(os.environ[variable])
    return config


def normalise(playbook: str, raw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (input, trigger) where input follows `<playbook>.input.json`."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"input must be a JSON object, got {type(raw).__name__}")
    if raw.get("detail-type") == ALARM_EVENT and playbook in ALARM_INPUT:
        detail = raw.get("detail") or {}
        trigger = {"kind": "alarm", "alarm": detail.get("alarmName"), "time": raw.get("time")}
        return ALARM_INPUT[playbook](raw), trigger
    if isinstance(raw.get("alert"), dict):  # a notification (budget, cost anomaly) as its starter function read it
        return raw, {"kind": "notification"} | raw["alert"]
    return raw, {"kind": "console"}


def validate(playbook: str, raw: Any, execution: str, started_at: str) -> dict[str, Any]:
    if playbook not in TARGET:
        raise InvalidInput(f"unknown playbook {playbook!r}")
    document, trigger = normalise(playbook, raw)
    problems = errors(f"{playbook}.input.json", document)
    if problems:
        raise InvalidInput("; ".join(problems))
    if trigger["kind"] == "console" and "startedBy" in document:
        # Started by another component on the playbook's behalf (e.g. the watchdog's fan-out); its schema allows it.
        trigger = dict(document["startedBy"])
    target, resource = TARGET[playbook](document)
    config = deployment_config() | document.get("config", {})
    now = clock.parse(started_at)
    expires = now + timedelta(seconds=config["lockTtlSeconds"])
    return {
        "playbook": playbook,
        "execution": execution,
        "target": target,
        "dryRun": bool(document.get("dryRun", False)),
        "trigger": trigger,
        "config": config,
        "lock": {
            "key": f"{playbook}#{resource}",
            "now": clock.iso(now),
            "expiresAt": clock.iso(expires),
            "ttl": str(int(expires.timestamp())),
        },
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        result = validate(event["playbook"], event.get("input"), event["execution"], event["startedAt"])
    except InvalidInput as problem:
        logger.warning("input rejected", extra={"playbook": event.get("playbook"), "problem": str(problem)})
        raise
    logger.info("input accepted", extra={"playbook": result["playbook"], "target": result["target"]})
    return result
