"""Run one scenario of one playbook in the local account and report what happened."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from . import project, safety
from .local.account import TERMINAL, LocalAccount
from .local.recorder import RECORDER, Call
from .scenario import Scenario, build_world, install_faults, install_reactions, trigger_payload

DECISIONS = ("approve", "reject", "expire")
LINK = re.compile(r"https://\S+/approvals/([A-Za-z0-9_-]{22})")
DEFAULT_DEADLINE_S = 120.0


@dataclass
class Email:
    topic: str
    subject: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    playbook: str
    scenario: str
    decision: str
    dry_run: bool
    status: str
    outcome: str
    states: list[str]
    transitions: int
    lambda_invocations: int
    aws_calls: int
    mutations: list[str]
    emails: list[dict[str, Any]]
    duration_s: float
    simulated_wait_s: float
    executions: list[str]
    error: str | None = None
    cause: str | None = None
    expect_failures: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.expect_failures

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _FormReader(HTMLParser):
    """Reads the approval page as a browser would: the form's hidden nonce."""

    def __init__(self) -> None:
        super().__init__()
        self.nonce: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name") == "nonce":
            self.nonce = values.get("value")


def api_event(
    method: str, path: str, body: str | None = None, source_ip: str = "127.0.0.1", user_agent: str = "playbooks-simulator"
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the approval API receives it."""
    ticket = path.split("/")[2] if path.count("/") >= 2 else ""
    resource = "/approvals/{id}/decision" if path.endswith("/decision") else "/approvals/{id}"
    headers = {"user-agent": user_agent, "content-type": "application/x-www-form-urlencoded", "host": "localhost"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": ticket},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def click(account: LocalAccount, ticket: str, decision: str, comment: str = "", actions: list[str] | None = None) -> dict[str, Any]:
    """What an approver does: open the link (GET), then press a button (POST with the page's nonce)."""
    from urllib.parse import urlencode

    page = account.invoke_handler("ApprovalWebFunction", api_event("GET", f"/approvals/{ticket}"))
    reader = _FormReader()
    reader.feed(page.get("body", ""))
    fields: list[tuple[str, str]] = [("decision", decision), ("nonce", reader.nonce or ""), ("comment", comment)]
    fields += [("actions", action) for action in actions or []]
    return dict(account.invoke_handler("ApprovalWebFunction", api_event("POST", f"/approvals/{ticket}/decision", urlencode(fields))))


def emails(calls: list[Call]) -> list[Email]:
    return [
        Email(
            str(c.params.get("TopicArn", "")),
            str(c.params.get("Subject", "")),
            str(c.params.get("Message", "")),
            dict(c.params.get("MessageAttributes", {})),
        )
        for c in calls
        if c.api == "sns:Publish" and c.error is None
    ]


def outcome_of(description: dict[str, Any]) -> str:
    if description["status"] == "SUCCEEDED":
        return str(json.loads(description.get("output") or "{}").get("outcome", "unknown"))
    return "failed"


def _check(result: Result, expect: dict[str, Any]) -> list[str]:
    failures = []
    if "status" in expect and result.status != expect["status"]:
        failures.append(f"status {result.status}, expected {expect['status']}")
    if "outcome" in expect and result.outcome != expect["outcome"]:
        failures.append(f"outcome {result.outcome}, expected {expect['outcome']}")
    position = 0
    for state in expect.get("states", []):
        try:
            position = result.states.index(state, position) + 1
        except ValueError:
            failures.append(f"state {state!r} not visited (in order)")
    for state in expect.get("notStates", []):
        if state in result.states:
            failures.append(f"state {state!r} visited")
    if "mutations" in expect and result.mutations != expect["mutations"]:
        failures.append(f"mutations {result.mutations}, expected {expect['mutations']}")
    texts = [e["subject"] + "\n" + e["body"] for e in result.emails]
    for needle in expect.get("emails", []):
        if not any(needle in text for text in texts):
            failures.append(f"no e-mail mentions {needle!r}")
    return failures


def run(
    scenario: Scenario,
    decision: str | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
    decide: Callable[[Email], str] | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    inspect: Callable[[LocalAccount], None] | None = None,
) -> Result:
    """Simulate `scenario`; `decide` (if given) chooses approve/reject for each approval e-mail (--decision prompt).

    `inspect` (if given) sees the account once the playbook has finished, before it closes (tests read the world).
    """
    chosen = decision or scenario.decision
    # One decision per approval request, in order; the last answers any further request.
    answers = chosen.split(",")
    if any(answer not in DECISIONS for answer in answers) and decide is None:
        raise project.ProjectError(f"unknown decision {chosen!r}; use one of {', '.join(DECISIONS)} or prompt")
    say = on_progress or (lambda _: None)
    started = time.perf_counter()
    with LocalAccount(settings=scenario.settings()) as account:
        build_world(account, scenario.data.get("world", {}), datetime.now(UTC))
        install_faults(scenario.data.get("faults", []))
        install_reactions(account, [dict(r) for r in scenario.data.get("reactions", [])])
        kind, payload = trigger_payload(account, scenario, dry_run)
        if dry_run and kind != "input":
            raise project.ProjectError("--dry-run needs a scenario started from console input (its trigger is an event)")
        if kind == "event":
            say(f"event delivered: {payload.get('detail-type')} ({payload.get('detail', {}).get('alarmName', '')})")
            executions = account.put_event(payload)
        else:
            executions = [account.start(scenario.playbook, payload)]
        if not executions:
            raise project.ProjectError("the trigger started no execution (no EventBridge rule matched)")
        approval_topic = account.outputs.get("ApprovalTopicArn", "")
        handled: set[str] = set()
        seen_states = 0
        seen_calls = 0  # the approval e-mails are looked for among the calls made since the last look
        end = time.monotonic() + deadline_s
        while True:
            states = _visited(account, executions[0])
            for state in states[seen_states:]:
                say(f"state: {state}")
            seen_states = len(states)
            new_calls = RECORDER.calls[seen_calls:]
            seen_calls += len(new_calls)
            for email in emails(new_calls):
                if email.topic != approval_topic:
                    continue
                for ticket in LINK.findall(email.body):
                    if ticket in handled:
                        continue
                    handled.add(ticket)
                    verdict = decide(email) if decide else answers[min(len(handled) - 1, len(answers) - 1)]
                    say(f"approval e-mail: {email.subject} -> {verdict}")
                    if verdict == "expire":
                        account.expire_waiting_tasks()
                    else:
                        answer = click(account, ticket, verdict)
                        say(f"approval page answered {answer['statusCode']}")
            if all(account.describe(arn)["status"] in TERMINAL for arn in executions):
                for state in _visited(account, executions[0])[seen_states:]:
                    say(f"state: {state}")
                break
            if time.monotonic() > end:
                raise project.ProjectError(f"simulation did not finish within {deadline_s:.0f} s")
            time.sleep(0.01)
        if inspect is not None:
            inspect(account)
        description = account.describe(executions[0])
        history = account.history(executions[0])
        calls = list(RECORDER.calls)
        playbook = project.playbook(scenario.playbook)
        principals = {playbook.logical_id} | {f.logical_id for f in account.functions.values()}
        own = set(account.resources.values()) | {f.name for f in account.functions.values()}
        result = Result(
            playbook=scenario.playbook,
            scenario=scenario.name,
            decision=chosen,
            dry_run=dry_run,
            status=description["status"],
            outcome=outcome_of(description),
            states=[e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e],
            transitions=sum(1 for e in history if "stateEnteredEventDetails" in e),
            lambda_invocations=sum(1 for c in calls if c.api == "lambda:Invoke" and c.principal == playbook.logical_id),
            aws_calls=sum(1 for c in calls if c.principal in principals),
            mutations=safety.mutations(calls, principals, own),
            emails=[asdict(e) for e in emails(calls)],
            duration_s=round(time.perf_counter() - started, 3),
            simulated_wait_s=round(account.clock.waited, 1),
            executions=executions,
            error=description.get("error"),
            cause=description.get("cause"),
            report=_report(description),
        )
    result.expect_failures = _check(result, scenario.expect) if decision in (None, scenario.decision) and not dry_run else []
    return result


def _visited(account: LocalAccount, execution: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in account.history(execution) if "stateEnteredEventDetails" in e]


def _report(description: dict[str, Any]) -> dict[str, Any] | None:
    """The playbook's final report, as its report function returned it (in the execution's output)."""
    if description["status"] != "SUCCEEDED":
        return None
    report = (json.loads(description.get("output") or "{}").get("result") or {}).get("report")
    return dict(report) if isinstance(report, dict) else None
