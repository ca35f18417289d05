"""The stack-wide safety controls every playbook consults before it asks for approval and again before it changes
anything: the brake (one SSM parameter; engaged, nothing is asked or changed) and the circuit breaker (at most
`MAX_REMEDIATIONS` changes of one resource by one playbook within `CIRCUIT_WINDOW_MINUTES`).

The circuit counts the change records the report function writes for every run that applied something.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Key

from shared import clock
from shared.aws import client, table

logger = Logger()

ENGAGED, RELEASED = "engaged", "released"
PROCEED, PAUSED, CIRCUIT_OPEN = "proceed", "paused", "circuit-open"
# Before a playbook asks (brake and circuit), before an undo asks (brake only: undo is never counted), before a change.
BEFORE_APPROVAL, BEFORE_UNDO, BEFORE_CHANGE = "before-approval", "before-undo", "before-change"
RESOURCE_INDEX = "byResource"
# Every verdict has the same fields: the state machines select them without testing for their presence.
PROCEED_VERDICT: dict[str, Any] = {"verdict": PROCEED, "note": "", "earlierRuns": []}


def brake_engaged(ssm: Any, parameter: str) -> bool:
    """The brake's state. Anything but "released" (including a missing parameter) counts as engaged: when the
    switch cannot be read, the safe answer is to change nothing."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return True
    return str(value).strip().lower() != RELEASED


def earlier_changes(changes: Any, resource_key: str, since: datetime) -> list[dict[str, Any]]:
    """Change records of `resource_key` ("<playbook>#<resource>") at or after `since`, oldest first."""
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "IndexName": RESOURCE_INDEX,
        "KeyConditionExpression": Key("resource").eq(resource_key) & Key("at").gte(clock.iso(since)),
    }
    while True:
        page = changes.query(**query)
        found += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def check(
    ssm: Any,
    changes: Any,
    *,
    brake_parameter: str,
    resource_key: str,
    phase: str,
    max_remediations: int,
    window_minutes: int,
    now: datetime,
) -> dict[str, Any]:
    """{"verdict": proceed | paused | circuit-open, "note", "earlierRuns"} for one playbook run."""
    if brake_engaged(ssm, brake_parameter):
        note = (
            "The brake is engaged: the plan below was not sent for approval and nothing was changed."
            if phase != BEFORE_CHANGE
            else "The brake was engaged while the approval was pending: the approval was not used and nothing was changed."
        )
        return {
            "verdict": PAUSED,
            "note": f"{note} Release it with `playbooks brake off` ({brake_parameter} = {RELEASED}).",
            "earlierRuns": [],
        }
    if phase != BEFORE_APPROVAL:
        return PROCEED_VERDICT
    earlier = earlier_changes(changes, resource_key, now - timedelta(minutes=window_minutes))
    if len(earlier) < max_remediations:
        return PROCEED_VERDICT
    runs = [{"execution": item["execution"], "at": item["at"], "outcome": item.get("outcome")} for item in earlier]
    _, resource = resource_key.split("#", 1)
    return {
        "verdict": CIRCUIT_OPEN,
        "note": f"Circuit open: {len(earlier)} remediations of {resource} by this playbook within {window_minutes} minutes "
        f"(at most {max_remediations}); a person has to look before it changes again. Earlier runs: "
        + ", ".join(run["execution"] for run in runs),
        "earlierRuns": runs,
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = check(
        client("ssm"),
        table(os.environ["CHANGES_TABLE"]),
        brake_parameter=os.environ["BRAKE_PARAMETER"],
        resource_key=event["resourceKey"],
        phase=event.get("phase", BEFORE_APPROVAL),
        max_remediations=int(os.environ.get("MAX_REMEDIATIONS", "2")),
        window_minutes=int(os.environ.get("CIRCUIT_WINDOW_MINUTES", "60")),
        now=clock.now(),
    )
    logger.info(
        "safety controls checked", extra={"resource": event["resourceKey"], "phase": event.get("phase"), "verdict": result["verdict"]}
    )
    return result
