"""Last step of every playbook: one report, e-mailed, whatever the outcome.

The report says what was found, what was proposed, what was decided and applied, how it was verified, what to do
next (recommendations the playbook does not automate) and, where a change was applied, how to roll it back.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

import approvals
from shared import clock, mail, run_metrics
from shared.aws import client, table

logger = Logger()

HEADLINES = {
    "remediated": "Remediated",
    "no-action": "No action needed",
    "rejected": "Plan rejected; nothing changed",
    "expired": "Approval expired; nothing changed",
    "dry-run": "Dry run; nothing changed",
    "already-running": "Another run is already handling this",
    "paused": "Paused: the brake is engaged; nothing was changed",
    "escalated": "Escalated: the change did not resolve the incident",
    "failed": "Playbook failed",
}
# A playbook may escalate before changing anything (e.g. a deny it must not touch): nothing to roll back then.
ESCALATED_UNCHANGED = "Escalated: a person has to decide; nothing changed"
# A quota increase AWS has not granted yet (PENDING or CASE_OPENED): requested, not remediated.
ESCALATED_REQUESTED = "Escalated: the increase is requested and AWS has not granted it yet; follow the request"
PAUSED_AFTER_CHANGES = "Paused: the brake was engaged after part of the plan was applied; nothing more was changed"
RECORD_TTL_DAYS = 400  # a change stays undoable (and counts for the circuit breaker) well past any incident review


def console_link(arn: str, kind: str = "executions/details") -> str:
    """The Step Functions console page of an execution or a state machine (its region is in the ARN)."""
    region = arn.split(":")[3] if arn.count(":") >= 3 else ""
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/{kind}/{quote(arn, safe=':')}"


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
        cause = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    except (TypeError, ValueError):
        pass
    return f"{error.get('Error', 'Error')}: {cause}".strip()


def build(execution: str, state: dict[str, Any], playbook: str | None = None) -> dict[str, Any]:
    outcome = state.get("outcome", "failed")
    plan = state.get("plan") or {}
    approval = state.get("approval") or {}
    # A playbook with more than one approval (event-loop: containment, then the fix) keeps the later ones under
    # `approvals.<phase>`; an action counts as approved in whichever approval approved it.
    later = [a for a in (state.get("approvals") or {}).values() if isinstance(a, dict)]
    approved = set(approval.get("approvedActions", [])) if outcome not in ("rejected", "expired", "dry-run") else set()
    for phase in later:
        approved |= set(phase.get("approvedActions", []))
    applied = state.get("applied")
    actions = plan.get("actions", [])
    if isinstance(applied, list):  # one entry per planned action (a Map over the plan): only those that took effect
        done = {item.get("id") for item in applied if isinstance(item, dict) and item.get("applied")}
        applied_actions = [a for a in actions if a["id"] in done]
    elif isinstance(applied, dict) and later:
        # Applied actions are recorded one by one (`applied.<action id>`): report exactly those.
        applied_actions = [a for a in actions if a["id"] in approved and a["id"] in applied]
    else:
        # A playbook that applies several actions records each under its id: only those were applied.
        applied_ids = (set(applied) & {a["id"] for a in actions}) if isinstance(applied, dict) else set()
        applied_actions = [a for a in actions if a["id"] in (applied_ids or approved)] if applied else []
    rollback = [a["rollback"] for a in applied_actions if a.get("rollback")] if outcome in ("escalated", "failed") else []
    safety = state.get("safety") or {}
    headline = HEADLINES.get(outcome, outcome)
    if outcome == "escalated" and (state.get("verification") or {}).get("caseToFollow"):
        headline = ESCALATED_REQUESTED
    elif outcome == "escalated" and not applied_actions:
        headline = ESCALATED_UNCHANGED
    elif outcome == "paused" and applied_actions:
        headline = PAUSED_AFTER_CHANGES
    return {
        "playbook": state.get("playbook") or playbook,
        "execution": execution,
        "outcome": outcome,
        "headline": headline,
        "target": state.get("target"),
        "trigger": state.get("trigger"),
        "summary": plan.get("summary"),
        "case": plan.get("case"),
        "evidence": plan.get("evidence", []),
        "proposed": [a["description"] for a in actions],
        "approvedBy": sorted({who for a in [approval, *later] for who in a.get("approvers", [])}),
        "decisionRecord": approval.get("record") or None,
        "applied": [a["description"] for a in applied_actions],
        "declined": [a["description"] for a in actions if approval and a["id"] not in approved and outcome not in ("dry-run",)],
        "verification": state.get("verification"),
        "rollback": rollback,
        "recommendations": plan.get("recommendations", []),
        "error": _error_text(state.get("error")) if outcome == "failed" else None,
        "note": " ".join(n for n in (state.get("note"), safety.get("note")) if n) or None,
        "earlierRuns": [run | {"link": console_link(run["execution"])} for run in safety.get("earlierRuns", [])],
        "resourceKey": (state.get("lock") or {}).get("key"),
        # What was applied, exactly as planned and approved: the change record undo reads (never this report's text).
        "appliedActions": applied_actions,
        # What an action recorded beyond its time (e.g. how many executions a bulk stop stopped, in how many rounds).
        "appliedDetails": {
            a["id"]: applied[a["id"]]
            for a in applied_actions
            if isinstance(applied, dict) and isinstance(applied.get(a["id"]), dict) and set(applied[a["id"]]) - {"at"}
        },
    }


def email_text(report: dict[str, Any]) -> tuple[str, str]:
    target = ", ".join(str(v) for v in (report.get("target") or {}).values())
    subject = mail.subject(f"[{report['outcome']}] {report['playbook']} {target}")
    lines = [f"{report['headline']}.", ""]
    if report.get("summary"):
        lines += [report["summary"], ""]
    if report.get("note"):
        lines += [report["note"], ""]
    sections = [
        ("Evidence", report["evidence"]),
        ("Proposed", report["proposed"]),
        ("Applied", report["applied"]),
        ("Declined", report["declined"]),
        ("Roll back with", [json.dumps(step, sort_keys=True) for step in report["rollback"]]),
        ("Recommendations", report["recommendations"]),
    ]
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines += [f"  - {item}" for item in items]
            lines.append("")
    if report.get("earlierRuns"):
        lines.append("Earlier runs on this resource:")
        lines += [f"  - {run['at']} {run.get('outcome') or ''}: {run['link']}" for run in report["earlierRuns"]]
        lines.append("")
    if report.get("undo"):
        lines += [report["undo"], ""]
    for action_id, details in (report.get("appliedDetails") or {}).items():
        lines += [f"Applied {action_id}: {json.dumps(details, sort_keys=True)}", ""]
    if report.get("verification"):
        lines += [f"Verification: {json.dumps(report['verification'], sort_keys=True)}", ""]
    if report.get("approvedBy"):
        lines += [f"Approved by: {', '.join(report['approvedBy'])}", ""]
    if report.get("decisionRecord"):
        lines += [f"Decision record: {report['decisionRecord']}", ""]
    for request in report.get("asked") or []:
        reminded = f"reminded at {request['remindedAt']}" if request.get("remindedAt") else "not reminded"
        lines += [f"Asked {', '.join(request['approvers'])} at {request['askedAt']}; {reminded}; expired at {request['expiresAt']}.", ""]
    if report.get("error"):
        lines += [f"Error: {report['error']}", ""]
    lines.append(f"Execution: {report['execution']}")
    return subject, "\n".join(lines)


def undo_text(execution: str, undo_state_machine: str) -> str:
    return (
        f"Undo: start the undo state machine ({console_link(undo_state_machine, 'statemachines/view')}) with input "
        f'{{"executionArn": "{execution}"}}, or run `playbooks undo {execution}`. It checks each change is still in '
        "place, asks for approval of each inverse, and verifies the before-state."
    )


def record_changes(changes: Any, report: dict[str, Any], now: Any) -> None:
    """The change record of a run that applied something: what undo reverses and what the circuit breaker counts."""
    changes.put_item(
        Item={
            "execution": report["execution"],
            "resource": report["resourceKey"],
            "at": clock.iso(now),
            "playbook": report["playbook"],
            "outcome": report["outcome"],
            "target": json.dumps(report.get("target")),
            "actions": json.dumps(report["appliedActions"]),
            "approvedBy": report["approvedBy"],
            "decisionRecord": report.get("decisionRecord") or "",
            "ttl": int(now.timestamp()) + RECORD_TTL_DAYS * 86400,
        }
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = build(event["execution"], event["state"], event.get("playbook"))
    if report["appliedActions"] and report["resourceKey"]:
        record_changes(table(os.environ["CHANGES_TABLE"]), report, clock.now())
        report["undo"] = undo_text(report["execution"], os.environ["UNDO_STATE_MACHINE_ARN"])
    if report["outcome"] == "expired":  # nobody answered: say who was asked and when they were reminded
        report["asked"] = approvals.asked(table(os.environ["APPROVALS_TABLE"]), event["execution"])
    subject, body = email_text(report)
    client("sns").publish(TopicArn=os.environ["NOTIFICATION_TOPIC_ARN"], Subject=subject, Message=body)
    run_metrics.publish(report["playbook"], report["outcome"], event["state"], clock.now())
    logger.info("report sent", extra={"playbook": report["playbook"], "outcome": report["outcome"]})
    return report
