"""Run one scenario of one playbook in the local account and report what happened."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import project, safety, world_snapshot
from .local.account import TERMINAL, LocalAccount
from .local.approval_web import ApprovalServer, click
from .local.recorder import PRINCIPAL, RECORDER, Call, Fault
from .scenario import Scenario, build_world, install_faults, install_reactions, trigger_payload

DECISIONS = ("approve", "reject", "expire", "browser")
EMAIL_DIR = project.ROOT / "out" / "emails"
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
    transitions_before_approval: int | None = None
    lambda_gb_seconds: float = 0.0
    expect_failures: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    approvals: int = 0
    undo: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.expect_failures

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
    if "approvals" in expect and result.approvals != expect["approvals"]:
        failures.append(f"{result.approvals} approval requests answered, expected {expect['approvals']}")
    if "undo" in expect:
        failures += _check_undo(result.undo, expect["undo"])
    return failures


def _check_undo(undo: dict[str, Any] | None, expect: dict[str, Any]) -> list[str]:
    if undo is None:
        return ["the undo did not run"]
    failures = [f"undo: {failure}" for failure in _check(_undo_as_result(undo), {k: v for k, v in expect.items() if k != "restored"})]
    if "restored" in expect and (not undo["differences"]) != expect["restored"]:
        failures.append(
            "undo: the world is not back at its before-state: " + "; ".join(undo["differences"])
            if expect["restored"]
            else "undo: the world is back at its before-state, expected a difference"
        )
    return failures


def _undo_as_result(undo: dict[str, Any]) -> Result:
    return Result(
        playbook="undo",
        scenario="",
        decision="",
        dry_run=False,
        status=undo["status"],
        outcome=undo["outcome"],
        states=undo["states"],
        transitions=len(undo["states"]),
        lambda_invocations=0,
        aws_calls=0,
        mutations=undo["mutations"],
        emails=undo["emails"],
        duration_s=0.0,
        simulated_wait_s=0.0,
        executions=[undo["execution"]],
    )


def run(
    scenario: Scenario,
    decision: str | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
    decide: Callable[[Email], str] | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    linger: Callable[[], None] | None = None,
    extra_faults: list[Fault] | None = None,
    inspect: Callable[[LocalAccount, Result], None] | None = None,
    small_pages: bool = False,
    parameters: dict[str, str] | None = None,
) -> Result:
    """Simulate `scenario`; `decide` (if given) chooses approve/reject for each approval e-mail (--decision prompt).

    `linger`, if given, is called once the playbook has finished, while the account and approval page still exist.
    `extra_faults` are injected besides the scenario's own; `inspect(account, result)` sees the account once the
    playbook has finished, before it closes (tests and `playbooks assure` read the world). `small_pages` makes every
    paginated API answer an empty first page, then one item per page (as AWS may). `parameters` are template
    parameters on top of the scenario's own.
    """
    chosen = decision or scenario.decision
    # One decision per approval request, in order; the last answers any further request.
    answers = chosen.split(",")
    # The scenario's own entries may approve only some actions ({approve: [ids]}), one entry per request; they apply
    # when no --decision is given (`--decision approve` approves every action of every request).
    entries: list[Any] = scenario.decisions if decision is None else list(answers)
    if any(answer not in DECISIONS for answer in answers) and decide is None:
        raise project.ProjectError(f"unknown decision {chosen!r}; use one of {', '.join(DECISIONS)} or prompt")
    say = on_progress or (lambda _: None)
    started = time.perf_counter()
    undo_spec: dict[str, Any] | None = scenario.data.get("undo")
    settings = scenario.settings()
    settings.small_pages = small_pages
    with LocalAccount(parameters=scenario.parameters | (parameters or {}), settings=settings) as account:
        build_world(account, scenario.data.get("world", {}), datetime.now(UTC))
        world_before = world_snapshot.snapshot(account) if undo_spec is not None else None
        undo_execution: str | None = None
        undo_first_call = 0
        install_faults(scenario.data.get("faults", []))
        RECORDER.faults.extend(extra_faults or [])
        install_reactions(account, [dict(r) for r in scenario.data.get("reactions", [])])
        for logical_id in scenario.data.get("schedules", []):
            say(f"scheduled run of {logical_id}")
            account.run_schedule(logical_id)
        kind, payload = trigger_payload(account, scenario, dry_run)
        if dry_run and kind != "input":
            raise project.ProjectError("--dry-run needs a scenario started from console input (its trigger is an event)")
        if kind == "event":
            say(f"event delivered: {payload.get('detail-type')} ({payload.get('detail', {}).get('alarmName', '')})")
            executions = account.put_event(payload)
        elif kind == "notification":
            sample = json.loads((project.ROOT / payload["event"]).read_text())["Records"][0]["Sns"]
            say(f"notification published to {payload['topic']}: {sample.get('Subject') or ''}")
            executions = account.publish(payload["topic"], sample.get("Subject") or "", sample["Message"])
        else:
            executions = [account.start(scenario.playbook, payload)]
        if not executions:
            raise project.ProjectError("the trigger started no execution (no EventBridge rule matched)")
        approval_topic = account.outputs.get("ApprovalTopicArn", "")
        server = ApprovalServer(account) if chosen == "browser" and decide is None else None
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
                    entry = entries[min(len(handled) - 1, len(entries) - 1)]
                    if scenario.data.get("answerAfterReminder") or (str(entry) == "expire" and not decide and server is None):
                        # nobody answers before half the time has passed: the reminder sweep runs then
                        say(f"no answer yet; reminder sweep at {remind(account, ticket)}")
                    verdict = decide(email) if decide else ("approve" if isinstance(entry, dict) else str(entry))
                    chosen_actions = list(entry["approve"]) if isinstance(entry, dict) and not decide else None
                    say(f"approval e-mail: {email.subject} -> {verdict}")
                    if server is not None:
                        local = email.body.replace(LINK.search(email.body).group(0), server.url(ticket))  # type: ignore[union-attr]
                        saved = _save_email(email.subject, local, len(handled))
                        say(f"open {server.url(ticket)} to decide (the e-mail as an approver receives it: {saved})")
                        continue
                    if verdict == "expire":
                        account.expire_waiting_tasks()
                    else:
                        try:
                            answer = click(account, ticket, verdict, actions=chosen_actions)
                        except ValueError as error:  # the scenario asks for a choice the served form does not offer
                            raise project.ProjectError(f"{scenario.name}: approval {len(handled)}: {error}") from None
                        say(f"approval page answered {answer['statusCode']}")
            if all(account.describe(arn)["status"] in TERMINAL for arn in executions):
                for state in _visited(account, executions[0])[seen_states:]:
                    say(f"state: {state}")
                if undo_spec is not None and undo_execution is None:
                    undo_first_call = len(RECORDER.calls)
                    undo_execution = start_undo(account, executions[0], undo_spec)
                    say(f"undo started for {executions[0]}")
                    executions.append(undo_execution)
                    continue
                break
            if time.monotonic() > end:
                raise project.ProjectError(f"simulation did not finish within {deadline_s:.0f} s")
            time.sleep(0.01)
        if linger is not None:
            linger()  # the account (and the approval page) stay up until the caller is done with them
        if server is not None:
            server.close()
        description = account.describe(executions[0])
        history = account.history(executions[0])
        calls = list(RECORDER.calls)
        playbook = project.playbook(scenario.playbook)
        principals = _principals(account, scenario.playbook)
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
            mutations=playbook_mutations(account, scenario.playbook, calls),
            emails=[asdict(e) for e in emails([c for c in calls if c.principal in principals])],
            duration_s=round(time.perf_counter() - started, 3),
            simulated_wait_s=round(account.clock.waited, 1),
            executions=executions,
            error=description.get("error"),
            cause=description.get("cause"),
            report=_report(description),
            transitions_before_approval=_transitions_before_approval(history, playbook.definition),
            lambda_gb_seconds=round(sum(i.gb_seconds for i in account.invocations), 6),
        )
        result.approvals = len(handled)
        if undo_execution is not None and world_before is not None:
            result.undo = _undo_result(account, undo_execution, calls[undo_first_call:], principals, world_before)
        if inspect is not None:
            inspect(account, result)
    own_decision = decision is None or (decision == scenario.decision and scenario.approved_actions is None)
    result.expect_failures = _check(result, scenario.expect) if own_decision and not dry_run else []
    return result


def start_undo(account: LocalAccount, execution: str, spec: dict[str, Any]) -> str:
    """Someone else's changes first (`drift`, as the operator), then the undo state machine for `execution`."""
    token = PRINCIPAL.set("operator")
    try:
        for change in spec.get("drift", []):
            service, operation = change["call"].split(":", 1)
            method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
            getattr(account.client(DRIFT_CLIENTS.get(service, service)), method)(**change.get("params", {}))
    finally:
        PRINCIPAL.reset(token)
    return account.start("undo", {"executionArn": execution} | dict(spec.get("input", {})))


DRIFT_CLIENTS = {"states": "stepfunctions"}


def _undo_result(account: LocalAccount, execution: str, calls: list[Call], principals: set[str], before: dict[str, Any]) -> dict[str, Any]:
    description = account.describe(execution)
    undo_principals = principals | {project.playbook("undo").logical_id}
    own = set(account.resources.values()) | {f.name for f in account.functions.values()}
    return {
        "execution": execution,
        "status": description["status"],
        "outcome": outcome_of(description),
        "states": _visited(account, execution),
        "mutations": safety.mutations(calls, undo_principals, own),
        "emails": [asdict(e) for e in emails([c for c in calls if c.principal in undo_principals])],
        "report": _report(description),
        "differences": world_snapshot.differences(before, world_snapshot.snapshot(account)),
    }


def remind(account: LocalAccount, ticket: str) -> str:
    """Run the reminder schedule at the moment the ticket's request is due a reminder (half its time); returns it."""
    table = account.client("dynamodb")
    name = account.resources["ApprovalsTable"]
    approval_id = table.get_item(TableName=name, Key={"id": {"S": ticket}}, ConsistentRead=True)["Item"]["approval"]["S"]
    approval = table.get_item(TableName=name, Key={"id": {"S": approval_id}}, ConsistentRead=True)["Item"]
    due = approval.get("remindAt", approval["createdAt"])["S"]
    # a scheduled event's time has whole seconds: the first period at or after the due moment
    at = datetime.fromisoformat(due.replace("Z", "+00:00")).replace(microsecond=0) + timedelta(seconds=1)
    account.run_schedule("ApprovalReminderFunction", at=at)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _principals(account: LocalAccount, playbook_id: str) -> set[str]:
    """Whose calls are the playbook's: its state machine and the template's functions."""
    return {project.playbook(playbook_id).logical_id} | {f.logical_id for f in account.functions.values()}


def playbook_mutations(account: LocalAccount, playbook_id: str, calls: list[Call]) -> list[str]:
    """The changes the playbook made to the world among `calls`; its own resources (locks, approvals) do not count."""
    own = set(account.resources.values()) | {f.name for f in account.functions.values()}
    return safety.mutations(calls, _principals(account, playbook_id), own)


def _transitions_before_approval(history: list[dict[str, Any]], definition: dict[str, Any]) -> int | None:
    """State transitions up to and including the first approval state (whose task sends the e-mail)."""
    from .validate import is_approval, states_of

    approvals = {name for name, state in states_of(definition) if is_approval(state)}
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    for index, name in enumerate(entered):
        if name in approvals:
            return index + 1
    return None


def _save_email(subject: str, body: str, number: int) -> str:
    EMAIL_DIR.mkdir(parents=True, exist_ok=True)
    path = EMAIL_DIR / f"approval-{number}.txt"
    path.write_text(f"Subject: {subject}\n\n{body}\n")
    return str(path.relative_to(project.ROOT))


def _visited(account: LocalAccount, execution: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in account.history(execution) if "stateEnteredEventDetails" in e]


def _report(description: dict[str, Any]) -> dict[str, Any] | None:
    """The playbook's final report, as its report function returned it (in the execution's output)."""
    if description["status"] != "SUCCEEDED":
        return None
    report = (json.loads(description.get("output") or "{}").get("result") or {}).get("report")
    return dict(report) if isinstance(report, dict) else None
