"""Manual approval: the one place a person stands between a playbook and production.

`request_handler` runs in the playbook's `.waitForTaskToken` state: it stores the task token server-side and e-mails
each approver a link of their own (a random *ticket* id; neither the token nor the approval id leaves the table).
`decide` is the single decision path, used by the web API and by the local simulator alike: single use, expiring,
N-of-M, partial (per action), audited.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from shared import clock, mail
from shared.aws import client, table

logger = Logger()

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 128 random bits, url-safe base64
PENDING, APPROVED, REJECTED, EXPIRED = "PENDING", "APPROVED", "REJECTED", "EXPIRED"
# Step Functions' answers when the waiting task is gone: the approval can no longer take effect.
TASK_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
RECORD_TTL_DAYS = 90
# A pending request carries REMINDER = DUE (the ReminderIndex's key, with remindAt) until its reminder is sent.
REMINDER, DUE, REMINDER_INDEX = "reminder", "due", "ReminderIndex"
# Without ApproverEmails there is one link, for whoever subscribes to the approval topic (no filter attribute).
UNNAMED_APPROVER = "approver"


def run_key(execution: str) -> str:
    return f"run#{execution}"


def new_id() -> str:
    return secrets.token_urlsafe(16)


def plan_hash(plan: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def approvers_from_env() -> list[str]:
    return [address.strip() for address in os.environ.get("APPROVERS", "").split(",") if address.strip()]


def _ttl(moment: datetime) -> int:
    return int((moment + timedelta(days=RECORD_TTL_DAYS)).timestamp())


# ---------------------------------------------------------------------------------------------- request
def email_text(playbook: str, plan: dict[str, Any], link: str, expires_at: str, required: int, dry_run: bool = False) -> tuple[str, str]:
    """Subject and body of the approval e-mail: what would change, why, until when; the link is the only way to act."""
    actions = plan.get("actions", [])
    subject = f"[approval needed] {playbook}: {actions[0]['description'] if len(actions) == 1 else f'{len(actions)} actions'}"
    lines = [
        f"The {playbook} playbook asks for your approval.",
        "",
        plan.get("summary", ""),
        "",
        "Proposed actions:",
    ]
    for action in actions:
        lines.append(f"  - {action['description']} ({action['api']} on {action['target']})")
        lines.append(f"    before: {json.dumps(action['before'], sort_keys=True)}")
        lines.append(f"    after:  {json.dumps(action['after'], sort_keys=True)}")
    lines += ["", "Evidence:"] + [f"  - {item}" for item in plan.get("evidence", [])]
    if required > 1:
        lines += ["", f"{required} different approvers must approve before anything changes."]
    lines += [
        "",
        f"Review and decide (the page changes nothing until you press a button): {link}",
        f"This request expires at {expires_at}; after that nothing is changed.",
    ]
    return mail.subject(subject), "\n".join(lines)


def request_approval(
    table: Any,
    sns: Any,
    *,
    task_token: str,
    execution: str,
    playbook: str,
    plan: dict[str, Any],
    timeout_seconds: int,
    approvers: list[str],
    required_approvals: int,
    base_url: str,
    topic_arn: str,
    now: datetime,
) -> None:
    approval_id = new_id()
    expires_at = clock.iso(now + timedelta(seconds=timeout_seconds))
    recipients = approvers or [UNNAMED_APPROVER]
    tickets = {recipient: new_id() for recipient in recipients}
    # The reminder sweep finds the request through the sparse ReminderIndex until it has reminded (or the request
    # is decided); the ticket ids are kept so the reminder carries each approver's same link, not a new one.
    remind_at = clock.iso(now + timedelta(seconds=timeout_seconds / 2))
    table.put_item(
        Item={
            "id": approval_id,
            "kind": "approval",
            "taskToken": task_token,
            "execution": execution,
            "playbook": playbook,
            "plan": json.dumps(plan),
            "planHash": plan_hash(plan),
            "status": PENDING,
            "createdAt": clock.iso(now),
            "expiresAt": expires_at,
            "requiredApprovals": required_approvals,
            "approvals": {},
            "audit": [],
            "tickets": tickets,
            "baseUrl": base_url,
            REMINDER: DUE,
            "remindAt": remind_at,
            "ttl": _ttl(now),
        },
        ConditionExpression="attribute_not_exists(id)",
    )
    # The run's own index of its requests: its report names who was asked and when they were reminded.
    table.update_item(
        Key={"id": run_key(execution)},
        UpdateExpression="SET kind = :run, #ttl = :ttl, approvalIds = list_append(if_not_exists(approvalIds, :none), :id)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":run": "run", ":ttl": _ttl(now), ":none": [], ":id": [approval_id]},
    )
    for recipient, ticket in tickets.items():
        table.put_item(
            Item={
                "id": ticket,
                "kind": "ticket",
                "approval": approval_id,
                "approver": recipient,
                "nonce": secrets.token_urlsafe(24),
                "ttl": _ttl(now),
            },
            ConditionExpression="attribute_not_exists(id)",
        )
        subject, body = email_text(playbook, plan, f"{base_url}/approvals/{ticket}", expires_at, required_approvals)
        attributes = {"approver": {"DataType": "String", "StringValue": recipient}} if approvers else {}
        sns.publish(TopicArn=topic_arn, Subject=subject, Message=body, MessageAttributes=attributes)
    logger.info(
        "approval requested",
        extra={"playbook": playbook, "execution": execution, "approvers": len(recipients), "expiresAt": expires_at},
    )


def reminder_text(playbook: str, plan: dict[str, Any], link: str, asked_at: str, expires_at: str, required: int) -> tuple[str, str]:
    """The approval e-mail again, headed by a reminder: the same link (single use, no new one), the same expiry."""
    subject, body = email_text(playbook, plan, link, expires_at, required)
    intro = f"Reminder: you were asked at {asked_at} and nobody has decided yet. Half of the time to decide has passed."
    return mail.subject(f"[reminder] {subject}"), f"{intro}\n\n{body}"


def escalation_text(
    playbook: str, plan: dict[str, Any], asked: list[str], waiting: list[str], asked_at: str, expires_at: str
) -> tuple[str, str]:
    """What the escalation contacts learn: who was asked, when, until when. No link: each link is one approver's
    credential (forwarding it would let one person cast another's vote)."""
    actions = plan.get("actions", [])
    subject = mail.subject(f"[escalation] {playbook}: no decision on {len(actions)} proposed action(s)")
    lines = [
        f"The {playbook} playbook asked for approval at {asked_at} and nobody has decided; half of the time has passed.",
        f"Asked: {', '.join(asked)}; reminded just now: {', '.join(waiting)} (not answered yet).",
        f"The request expires at {expires_at}; then the playbook ends with outcome expired and nothing is changed.",
        "",
        plan.get("summary", ""),
        "",
        "Proposed actions:",
        *[f"  - {action['description']}" for action in actions],
        "",
        "Please make sure one of them decides through the link in their e-mail.",
    ]
    return subject, "\n".join(lines)


def send_reminders(table: Any, sns: Any, *, topic_arn: str, escalation: list[str], now: datetime) -> int:
    """Remind the approvers of every pending request past half its time, and tell the escalation contacts, once per
    request (a conditional write claims it, so overlapping sweeps never remind twice). Returns how many reminded."""
    at = clock.iso(now)
    due: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "IndexName": REMINDER_INDEX,
        "KeyConditionExpression": "#r = :due AND remindAt <= :now",
        "ExpressionAttributeNames": {"#r": REMINDER},
        "ExpressionAttributeValues": {":due": DUE, ":now": at},
    }
    while True:
        page = table.query(**query)
        due += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    reminded = 0
    for key in due:
        try:
            approval = table.update_item(
                Key={"id": key["id"]},
                UpdateExpression="SET remindedAt = :now REMOVE #r",
                ConditionExpression="attribute_exists(#r) AND #s = :pending AND expiresAt > :now",
                ExpressionAttributeNames={"#r": REMINDER, "#s": "status"},
                ExpressionAttributeValues={":now": at, ":pending": PENDING},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            _drop_reminder(table, key["id"], at)
            continue
        try:
            _remind(sns, approval, topic_arn, escalation)
        except Exception:
            # Not sent: the request goes back into the index and the next sweep tries again (a reminder may then
            # reach someone twice, never no one).
            table.update_item(
                Key={"id": key["id"]},
                UpdateExpression="SET #r = :due REMOVE remindedAt",
                ExpressionAttributeNames={"#r": REMINDER},
                ExpressionAttributeValues={":due": DUE},
            )
            raise
        reminded += 1
    return reminded


def _remind(sns: Any, approval: dict[str, Any], topic_arn: str, escalation: list[str]) -> None:
    plan = json.loads(approval["plan"])
    voted = set(approval.get("approvals", {}))
    tickets = approval.get("tickets", {})
    waiting = [recipient for recipient in tickets if recipient not in voted]
    for recipient in waiting:
        subject, body = reminder_text(
            approval["playbook"],
            plan,
            f"{approval.get('baseUrl', '')}/approvals/{tickets[recipient]}",
            approval["createdAt"],
            approval["expiresAt"],
            int(approval["requiredApprovals"]),
        )
        named = recipient != UNNAMED_APPROVER
        attributes = {"approver": {"DataType": "String", "StringValue": recipient}} if named else {}
        sns.publish(TopicArn=topic_arn, Subject=subject, Message=body, MessageAttributes=attributes)
    for contact in escalation:
        subject, body = escalation_text(approval["playbook"], plan, sorted(tickets), waiting, approval["createdAt"], approval["expiresAt"])
        attributes = {"escalation": {"DataType": "String", "StringValue": contact}}
        sns.publish(TopicArn=topic_arn, Subject=subject, Message=body, MessageAttributes=attributes)
    logger.info(
        "approval reminded", extra={"playbook": approval["playbook"], "execution": approval["execution"], "escalated": len(escalation)}
    )


def _drop_reminder(table: Any, approval_id: str, at: str) -> None:
    """A decided or expired request leaves the index (a pending one that lost the claim to another sweep stays put)."""
    try:
        table.update_item(
            Key={"id": approval_id},
            UpdateExpression="REMOVE #r",
            ConditionExpression="attribute_exists(#r) AND (#s <> :pending OR expiresAt <= :now)",
            ExpressionAttributeNames={"#r": REMINDER, "#s": "status"},
            ExpressionAttributeValues={":pending": PENDING, ":now": at},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def asked(table: Any, execution: str) -> list[dict[str, Any]]:
    """Each approval request of a run: who was asked, when, and when they were reminded (for its report)."""
    run = table.get_item(Key={"id": run_key(execution)}, ConsistentRead=True).get("Item") or {}
    requests = []
    for approval_id in run.get("approvalIds", []):
        approval = table.get_item(Key={"id": approval_id}, ConsistentRead=True).get("Item")
        if approval:
            requests.append(
                {
                    "approvers": sorted(approval.get("tickets", {})),
                    "askedAt": approval["createdAt"],
                    "remindedAt": approval.get("remindedAt"),
                    "expiresAt": approval["expiresAt"],
                }
            )
    return requests


@logger.inject_lambda_context
def remind_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Every minute (EventBridge schedule): the scheduled event's time is the sweep's "now"."""
    now = clock.parse(event["time"]) if event.get("time") else clock.now()
    reminded = send_reminders(
        table(os.environ["APPROVALS_TABLE"]),
        client("sns"),
        topic_arn=os.environ["APPROVAL_TOPIC_ARN"],
        escalation=[address.strip() for address in os.environ.get("ESCALATION_EMAILS", "").split(",") if address.strip()],
        now=now,
    )
    return {"reminded": reminded}


@logger.inject_lambda_context
def request_handler(event: dict[str, Any], context: LambdaContext) -> None:
    """The playbook's approval Task (lambda:invoke.waitForTaskToken): Step Functions discards what this returns and
    waits for the decision's SendTaskSuccess or SendTaskFailure."""
    request_approval(
        table(os.environ["APPROVALS_TABLE"]),
        client("sns"),
        task_token=event["taskToken"],
        execution=event["execution"],
        playbook=event["playbook"],
        plan=event["plan"],
        timeout_seconds=int(event["timeoutSeconds"]),
        approvers=approvers_from_env(),
        required_approvals=int(os.environ.get("REQUIRED_APPROVALS", "1")),
        base_url=os.environ["APPROVAL_BASE_URL"].rstrip("/"),
        topic_arn=os.environ["APPROVAL_TOPIC_ARN"],
        now=clock.now(),
    )


# ---------------------------------------------------------------------------------------------- decide
@dataclass
class Outcome:
    """The answer to a decision request: an HTTP status and a sentence for the approver."""

    status: int
    message: str
    approval: dict[str, Any] = field(default_factory=dict)


@dataclass
class View:
    """What the approval page shows for one ticket."""

    ticket: dict[str, Any]
    approval: dict[str, Any]

    @property
    def plan(self) -> dict[str, Any]:
        return dict(json.loads(self.approval["plan"]))


def load(table: Any, ticket_id: str) -> View | None:
    """Ticket and approval by id: two key lookups, never a scan; malformed ids are not looked up at all."""
    if not isinstance(ticket_id, str) or not ID_PATTERN.match(ticket_id):
        return None
    ticket = table.get_item(Key={"id": ticket_id}, ConsistentRead=True).get("Item")
    if not ticket or ticket.get("kind") != "ticket":
        return None
    approval = table.get_item(Key={"id": ticket["approval"]}, ConsistentRead=True).get("Item")
    if not approval:
        return None
    return View(ticket=ticket, approval=approval)


def current_status(approval: dict[str, Any], now: datetime) -> str:
    if approval["status"] == PENDING and clock.iso(now) >= approval["expiresAt"]:
        return EXPIRED
    return str(approval["status"])


def _audit_entry(
    view: View, decision: str, actions: list[str], comment: str, source_ip: str, user_agent: str, now: datetime
) -> dict[str, Any]:
    return {
        "approver": view.ticket["approver"],
        "decision": decision,
        "actions": actions,
        "comment": comment,
        "sourceIp": source_ip,
        "userAgent": user_agent[:300],
        "at": clock.iso(now),
        "planHash": view.approval["planHash"],
    }


def decide(
    table: Any,
    sfn: Any,
    ticket_id: str,
    *,
    decision: str,
    nonce: str,
    actions: list[str] | None = None,
    comment: str = "",
    source_ip: str = "",
    user_agent: str = "",
    record_url: str = "",
    now: datetime,
) -> Outcome:
    view = load(table, ticket_id)
    if view is None:
        return Outcome(404, "No such approval request.")
    if not secrets.compare_digest(str(view.ticket["nonce"]), str(nonce)):
        return Outcome(403, "This form is not valid for this approval request; open the link from your e-mail again.")
    status = current_status(view.approval, now)
    if status == EXPIRED:
        return Outcome(410, f"This approval request expired at {view.approval['expiresAt']}; nothing was changed.")
    if status != PENDING:
        return Outcome(409, f"This approval request was already decided: {status.lower()}.")
    plan_actions = [action["id"] for action in view.plan.get("actions", [])]
    if decision == "approve":
        if actions is None and len(plan_actions) > 1:
            # A form that names no actions is never read as "all of them": only what was ticked is approved.
            return Outcome(400, "No actions were chosen, so nothing was approved. Tick the actions you approve, or reject the plan.")
        if actions is not None and set(actions) - set(plan_actions):
            return Outcome(400, "The form names actions that are not in this plan; nothing was approved. Open the link again.")
    chosen = plan_actions if actions is None else [a for a in plan_actions if a in set(actions)]
    if decision == "approve" and not chosen:
        return Outcome(400, "No actions were chosen, so nothing was approved. Tick the actions you approve, or reject the plan.")
    entry = _audit_entry(view, decision, chosen if decision == "approve" else [], comment, source_ip, user_agent, now)
    entry["record"] = record_url
    logger.info(
        "approval decision",
        extra={k: v for k, v in entry.items() if k not in ("comment", "record")} | {"playbook": view.approval["playbook"]},
    )
    if decision == "reject":
        return _reject(table, sfn, view, entry, now)
    return _approve(table, sfn, view, entry, chosen, now)


def _conditional(update: Any) -> bool:
    try:
        update()
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _reject(table: Any, sfn: Any, view: View, entry: dict[str, Any], now: datetime) -> Outcome:
    approval_id = view.approval["id"]
    won = _conditional(
        lambda: table.update_item(
            Key={"id": approval_id},
            UpdateExpression="SET #s = :rejected, decidedAt = :at, audit = list_append(audit, :entry)",
            ConditionExpression="#s = :pending AND expiresAt > :at",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":rejected": REJECTED, ":pending": PENDING, ":at": entry["at"], ":entry": [entry]},
        )
    )
    if not won:
        return _lost_race(table, view, now)
    cause = f"Rejected by {entry['approver']}" + (f": {entry['comment']}" if entry["comment"] else "")
    if entry["record"]:
        cause += f" (decision record: {entry['record']})"
    return _send(
        table,
        view,
        entry,
        lambda: sfn.send_task_failure(taskToken=view.approval["taskToken"], error="Rejected", cause=cause[:32768]),
        REJECTED,
    )


def _approve(table: Any, sfn: Any, view: View, entry: dict[str, Any], chosen: list[str], now: datetime) -> Outcome:
    approval_id = view.approval["id"]
    approver = view.ticket["approver"]
    recorded = _conditional(
        lambda: table.update_item(
            Key={"id": approval_id},
            UpdateExpression="SET approvals.#who = :record, audit = list_append(audit, :entry)",
            ConditionExpression="#s = :pending AND expiresAt > :at AND attribute_not_exists(approvals.#who)",
            ExpressionAttributeNames={"#s": "status", "#who": approver},
            ExpressionAttributeValues={
                ":record": {"actions": chosen, "at": entry["at"]},
                ":pending": PENDING,
                ":at": entry["at"],
                ":entry": [entry],
            },
        )
    )
    if not recorded:
        return _lost_race(table, view, now)
    approval = table.get_item(Key={"id": approval_id}, ConsistentRead=True)["Item"]
    required = int(approval["requiredApprovals"])
    votes = approval["approvals"]
    if len(votes) < required:
        return Outcome(202, f"Your approval is recorded ({len(votes)} of {required}); waiting for another approver.", approval)
    # Every approver must have approved an action for it to be applied.
    agreed = [action for action in chosen if all(action in vote["actions"] for vote in votes.values())]
    won = _conditional(
        lambda: table.update_item(
            Key={"id": approval_id},
            UpdateExpression="SET #s = :approved, decidedAt = :at, approvedActions = :actions",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":approved": APPROVED, ":pending": PENDING, ":at": entry["at"], ":actions": agreed},
        )
    )
    if not won:
        return _lost_race(table, view, now)
    output = {
        "decision": "approve",
        "approvedActions": agreed,
        "approved": {action: True for action in agreed},
        "approvers": sorted(votes),
        "comment": entry["comment"],
        "decidedAt": entry["at"],
        "record": entry["record"],
    }
    return _send(table, view, entry, lambda: sfn.send_task_success(taskToken=approval["taskToken"], output=json.dumps(output)), APPROVED)


def _lost_race(table: Any, view: View, now: datetime) -> Outcome:
    fresh = table.get_item(Key={"id": view.approval["id"]}, ConsistentRead=True)["Item"]
    status = current_status(fresh, now)
    if status == EXPIRED:
        return Outcome(410, f"This approval request expired at {fresh['expiresAt']}; nothing was changed.")
    if status == PENDING:
        return Outcome(409, "You have already approved this request; waiting for another approver.")
    return Outcome(409, f"This approval request was already decided: {status.lower()}.")


def _send(table: Any, view: View, entry: dict[str, Any], call: Any, status: str) -> Outcome:
    """Tell Step Functions; the decision stands only if it arrived. Any other failure (throttling past the SDK's
    retries, a permission error, no connection) puts the request back to pending and says so: the approver presses
    again instead of being told later that a decision which never arrived was "already decided"."""
    approval_id = view.approval["id"]
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in TASK_GONE:
            table.update_item(
                Key={"id": approval_id},
                UpdateExpression="SET #s = :expired",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":expired": EXPIRED},
            )
            logger.warning("playbook no longer waiting", extra={"approval": approval_id, "reason": code})
            return Outcome(410, "The playbook is no longer waiting for this decision (it timed out or was stopped); nothing was changed.")
        return _undelivered(table, view, entry, status, code)
    except BotoCoreError as error:
        return _undelivered(table, view, entry, status, type(error).__name__)
    verb = "approved" if status == APPROVED else "rejected"
    return Outcome(200, f"Thank you: the plan is {verb} and the playbook has resumed.")


def _undelivered(table: Any, view: View, entry: dict[str, Any], status: str, reason: str) -> Outcome:
    approval_id = view.approval["id"]
    note = {"approver": entry["approver"], "decision": "not delivered", "actions": [], "at": entry["at"], "reason": reason}
    # Only this decision is taken back (its status and, for an approval, its vote); earlier approvers' votes stay.
    vote = " REMOVE decidedAt, approvedActions, approvals.#who" if status == APPROVED else " REMOVE decidedAt"
    table.update_item(
        Key={"id": approval_id},
        UpdateExpression="SET #s = :pending, audit = list_append(audit, :note)" + vote,
        ConditionExpression="#s = :decided AND decidedAt = :at",
        ExpressionAttributeNames={"#s": "status"} | ({"#who": entry["approver"]} if status == APPROVED else {}),
        ExpressionAttributeValues={":pending": PENDING, ":decided": status, ":at": entry["at"], ":note": [note]},
    )
    logger.error("decision not delivered to Step Functions", extra={"approval": approval_id, "reason": reason})
    return Outcome(
        503,
        f"Your decision was NOT recorded: Step Functions did not accept it ({reason}). Nothing was changed and the "
        "request is still open; press the button again.",
    )
