"""First state of every playbook: turn the trigger (alarm event or console input) into one validated input.

Bad input fails here with `InvalidInput` and a message naming every problem, before anything is read or changed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clock
from shared.errors import InvalidInput
from shared.schemas import errors

logger = Logger()

CONFIG_DEFAULTS: dict[str, Any] = {
    "approvalTimeoutSeconds": 3600,
    "verifyWaitSeconds": 300,
    "lockTtlSeconds": 7200,
    "lookbackMinutes": 60,
    "maxReservedConcurrency": 1000,
    "concurrencyIncreaseFactor": 2,
    # event-loop
    "drainSeconds": 300,
    "executionRateThreshold": 200,
    "keySampleSize": 100,
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
ALARM_INPUT = {"lambda-throttling": throttling_input_from_alarm, "event-loop": event_loop_input_from_alarm}
TARGET = {"lambda-throttling": throttling_target, "event-loop": event_loop_target}


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
    return raw, {"kind": "console"}


def validate(playbook: str, raw: Any, execution: str, started_at: str) -> dict[str, Any]:
    if playbook not in TARGET:
        raise InvalidInput(f"unknown playbook {playbook!r}")
    document, trigger = normalise(playbook, raw)
    problems = errors(f"{playbook}.input.json", document)
    if problems:
        raise InvalidInput("; ".join(problems))
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
