"""The decision path: single use, expiry, nonce, never a second SendTaskSuccess."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_fakes import TASK_TOKEN, FakeSfn, FakeSns
from botocore.exceptions import ClientError, EndpointConnectionError

import approvals

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
PLAN: dict[str, Any] = {
    "case": "function-level",
    "summary": "s",
    "evidence": [],
    "recommendations": [],
    "actions": [
        {
            "id": "raise_reserved_concurrency",
            "api": "lambda:PutFunctionConcurrency",
            "target": "ingest-handler",
            "description": "Raise",
            "before": {"r": 100},
            "after": {"r": 200},
            "rollback": None,
        }
    ],
}


TWO_ACTIONS: dict[str, Any] = PLAN | {
    "actions": [
        PLAN["actions"][0],
        PLAN["actions"][0] | {"id": "request_quota_increase", "api": "servicequotas:RequestServiceQuotaIncrease", "target": "account"},
        PLAN["actions"][0] | {"id": "lower_memory", "api": "lambda:UpdateFunctionConfiguration", "target": "transform-handler"},
    ]
}


@pytest.fixture
def table(approvals_table: Any) -> Any:
    """Every test reads only what it wrote (the helpers below scan the table)."""
    return approvals_table


def request(table: Any, approvers: list[str] | None = None, required: int = 1, plan: dict[str, Any] | None = None) -> dict[str, str]:
    approvals.request_approval(
        table,
        FakeSns(),
        task_token="TOKEN-SECRET",
        execution="arn:aws:states:us-east-1:123456789012:execution:sm:e1",
        playbook="lambda-throttling",
        plan=plan or PLAN,
        timeout_seconds=600,
        approvers=approvers or [],
        required_approvals=required,
        base_url="https://x/prod",
        topic_arn="arn:aws:sns:us-east-1:123456789012:approvals",
        now=NOW,
    )
    tickets = [item for item in table.scan()["Items"] if item["kind"] == "ticket"]
    return {str(t["approver"]): str(t["id"]) for t in tickets} | {f"nonce:{t['approver']}": str(t["nonce"]) for t in tickets}


def test_replay_is_409_and_the_task_resumes_once(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    first = approvals.decide(table, sfn, tickets["approver"], decision="approve", nonce=tickets["nonce:approver"], now=NOW)
    second = approvals.decide(table, sfn, tickets["approver"], decision="approve", nonce=tickets["nonce:approver"], now=NOW)
    assert (first.status, second.status) == (200, 409)
    assert len(sfn.successes) == 1


def test_expired_is_410_and_nothing_is_sent(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    late = approvals.decide(
        table, sfn, tickets["approver"], decision="approve", nonce=tickets["nonce:approver"], now=NOW + timedelta(seconds=601)
    )
    assert late.status == 410
    assert sfn.successes == sfn.failures == []


@pytest.mark.parametrize("ticket", ["", "x", "../../etc", "A" * 22 + "'", "A" * 22])
def test_malformed_or_unknown_ids_are_404(table: Any, ticket: str) -> None:
    request(table)
    assert approvals.decide(table, FakeSfn(), ticket, decision="approve", nonce="n" * 16, now=NOW).status == 404


def test_wrong_nonce_decides_nothing(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    assert approvals.decide(table, sfn, tickets["approver"], decision="approve", nonce="forged-nonce-000000", now=NOW).status == 403
    assert sfn.successes == []


def test_reject_sends_failure_named_rejected(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    assert (
        approvals.decide(
            table, sfn, tickets["approver"], decision="reject", nonce=tickets["nonce:approver"], comment="not now", now=NOW
        ).status
        == 200
    )
    assert sfn.failures[0]["error"] == "Rejected"
    assert "not now" in sfn.failures[0]["cause"]


def test_two_of_two_needs_distinct_approvers(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2)
    sfn = FakeSfn()
    assert (
        approvals.decide(table, sfn, tickets["a@example.com"], decision="approve", nonce=tickets["nonce:a@example.com"], now=NOW).status
        == 202
    )
    assert (
        approvals.decide(table, sfn, tickets["a@example.com"], decision="approve", nonce=tickets["nonce:a@example.com"], now=NOW).status
        == 409
    )
    assert sfn.successes == []
    assert (
        approvals.decide(table, sfn, tickets["b@example.com"], decision="approve", nonce=tickets["nonce:b@example.com"], now=NOW).status
        == 200
    )
    assert len(sfn.successes) == 1


def test_the_token_is_never_in_the_email(table: Any) -> None:
    subject, body = approvals.email_text("lambda-throttling", PLAN, "https://x/prod/approvals/abc", "2026-11-25T03:10:00.000Z", 1)
    assert "TOKEN" not in subject + body


def test_long_subjects_stay_within_what_sns_accepts() -> None:
    plan = PLAN | {
        "actions": [
            PLAN["actions"][0]
            | {"description": "Request a Lambda concurrent-executions quota increase from 1000 to 2000 for this account."}
        ]
    }
    subject, _ = approvals.email_text("lambda-throttling", plan, "https://x/prod/approvals/abc", "2026-11-25T03:10:00.000Z", 1)
    assert len(subject) < 100 and subject.isascii() and subject.endswith("...")


def approve(table: Any, sfn: Any, tickets: dict[str, str], who: str = "approver", **kwargs: Any) -> approvals.Outcome:
    return approvals.decide(table, sfn, tickets[who], decision="approve", nonce=tickets[f"nonce:{who}"], **({"now": NOW} | kwargs))


def record(table: Any) -> dict[str, Any]:
    return next(item for item in table.scan()["Items"] if item["kind"] == "approval")


def test_a_partial_approval_approves_exactly_the_chosen_actions(table: Any) -> None:
    tickets = request(table, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    # WHEN the approver ticks two of three actions
    assert approve(table, sfn, tickets, actions=["lower_memory", "raise_reserved_concurrency"]).status == 200
    # THEN those two (in plan order) and nothing else are approved
    output = json.loads(sfn.successes[0]["output"])
    assert output["approved"] == {"raise_reserved_concurrency": True, "lower_memory": True}
    assert output["approvedActions"] == ["raise_reserved_concurrency", "lower_memory"]


@pytest.mark.parametrize("actions", [None, []])
def test_no_choice_on_a_multi_action_plan_approves_nothing(table: Any, actions: list[str] | None) -> None:
    tickets = request(table, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    refused = approve(table, sfn, tickets, actions=actions)
    assert refused.status == 400 and "nothing was approved" in refused.message
    assert sfn.successes == [] and record(table)["status"] == approvals.PENDING
    # the request is still open: a real choice afterwards is taken
    assert approve(table, sfn, tickets, actions=["lower_memory"]).status == 200
    assert json.loads(sfn.successes[0]["output"])["approved"] == {"lower_memory": True}


def test_a_single_action_plan_without_a_choice_approves_its_one_action(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets).status == 200
    assert json.loads(sfn.successes[0]["output"])["approved"] == {"raise_reserved_concurrency": True}


def test_actions_not_in_the_plan_approve_nothing(table: Any) -> None:
    tickets = request(table, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets, actions=["lower_memory", "delete_everything"]).status == 400
    assert sfn.successes == []


def test_two_approvers_apply_only_what_both_ticked(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets, "a@example.com", actions=["raise_reserved_concurrency", "lower_memory"]).status == 202
    assert approve(table, sfn, tickets, "b@example.com", actions=["lower_memory", "request_quota_increase"]).status == 200
    assert json.loads(sfn.successes[0]["output"])["approved"] == {"lower_memory": True}


def test_the_request_expires_at_its_expiry_instant(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    # one second before: still open; at the very instant it expires: too late
    assert approvals.current_status(record(table), NOW + timedelta(seconds=599)) == approvals.PENDING
    assert approve(table, sfn, tickets, now=NOW + timedelta(seconds=600)).status == 410
    assert sfn.successes == []


def test_a_reject_that_loses_the_race_sends_nothing(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    # GIVEN the page was read while pending, then another press approved the plan
    stale = approvals.load(table, tickets["approver"])
    assert stale is not None
    assert approve(table, sfn, tickets).status == 200
    # WHEN the reject decided on the stale view is written
    entry = approvals._audit_entry(stale, "reject", [], "", "", "", NOW) | {"record": ""}
    outcome = approvals._reject(table, sfn, stale, entry, NOW)
    # THEN it lost: no failure is sent and the record stays approved
    assert outcome.status == 409
    assert sfn.failures == [] and record(table)["status"] == approvals.APPROVED


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException", "InternalServerError"])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_callback_that_fails_is_not_recorded_and_the_approver_can_press_again(table: Any, code: str, decision: str) -> None:
    tickets = request(table)
    sfn = FakeSfn(errors=[code])
    press = lambda: approvals.decide(  # noqa: E731 - the same press, twice
        table, sfn, tickets["approver"], decision=decision, nonce=tickets["nonce:approver"], now=NOW
    )
    # WHEN Step Functions refuses the callback
    first = press()
    # THEN the approver is told it was not recorded, and the request is open again (no vote, no decision kept)
    assert first.status == 503 and "NOT recorded" in first.message and code in first.message
    fresh = record(table)
    assert fresh["status"] == approvals.PENDING and fresh["approvals"] == {} and "decidedAt" not in fresh
    # AND pressing again decides (not "already decided"), with exactly one delivered callback
    assert press().status == 200
    assert len(sfn.successes) + len(sfn.failures) == 1
    assert record(table)["status"] == (approvals.APPROVED if decision == "approve" else approvals.REJECTED)


def test_a_failed_last_vote_keeps_the_earlier_approvers_vote(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets, "a@example.com").status == 202
    sfn.errors = ["ThrottlingException"]
    assert approve(table, sfn, tickets, "b@example.com").status == 503
    assert set(record(table)["approvals"]) == {"a@example.com"}
    assert approve(table, sfn, tickets, "b@example.com").status == 200
    assert json.loads(sfn.successes[0]["output"])["approvers"] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("code", sorted(approvals.TASK_GONE))
def test_a_task_that_is_gone_ends_the_request_as_expired(table: Any, code: str) -> None:
    tickets = request(table)
    sfn = FakeSfn(errors=[code])
    assert approve(table, sfn, tickets).status == 410
    assert record(table)["status"] == approvals.EXPIRED
    assert approve(table, sfn, tickets).status == 410


# ------------------------------------------------------------------------ nobody answered: reminder and escalation
def ask(table: Any, sns: FakeSns, approvers: list[str], required: int = 1) -> None:
    approvals.request_approval(
        table,
        sns,
        task_token="TOKEN-SECRET",
        execution="arn:aws:states:us-east-1:123456789012:execution:sm:e1",
        playbook="lambda-throttling",
        plan=TWO_ACTIONS,
        timeout_seconds=600,
        approvers=approvers,
        required_approvals=required,
        base_url="https://x/prod",
        topic_arn="arn:aws:sns:us-east-1:123456789012:approvals",
        now=NOW,
    )


def sweep(table: Any, sns: FakeSns, seconds: int, escalation: list[str] | None = None) -> int:
    return approvals.send_reminders(
        table,
        sns,
        topic_arn="arn:aws:sns:us-east-1:123456789012:approvals",
        escalation=escalation or [],
        now=NOW + timedelta(seconds=seconds),
    )


def links(message: dict[str, Any]) -> list[str]:
    return [word for word in message["Message"].split() if "/approvals/" in word]


def to(message: dict[str, Any], attribute: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(attribute)
    return str(value["StringValue"]) if value else None


def test_each_named_approver_is_sent_only_their_link_and_an_unnamed_one_reaches_every_subscriber(table: Any) -> None:
    # GIVEN a request to two named approvers, and one to nobody named (the topic's own subscribers)
    named, unnamed = FakeSns(), FakeSns()
    ask(table, named, ["a@example.com", "b@example.com"], required=2)
    ask(table, unnamed, [])
    # THEN each named approver's message is filtered to them (the stack subscribes each address with a filter policy
    # on `approver`), and the unnamed request carries no attribute, so no subscription's filter can hold it back
    assert sorted(to(message, "approver") or "" for message in named.messages) == ["a@example.com", "b@example.com"]
    assert [message["MessageAttributes"] for message in unnamed.messages] == [{}]


def test_the_reminder_goes_out_once_at_half_time_with_the_same_links(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com", "b@example.com"], required=2)
    asked = {to(m, "approver"): links(m) for m in sns.messages}
    # before half of the 600 s: nothing
    assert sweep(table, sns, 299, ["lead@example.com"]) == 0 and len(sns.messages) == 2
    # at half: each approver again, with the very link they had; the lead is told, with no link at all
    assert sweep(table, sns, 300, ["lead@example.com"]) == 1
    reminders = [m for m in sns.messages[2:] if to(m, "approver")]
    escalations = [m for m in sns.messages[2:] if to(m, "escalation")]
    assert {to(m, "approver"): links(m) for m in reminders} == asked
    assert all(m["Subject"].startswith("[reminder] [approval needed]") for m in reminders)
    assert [to(m, "escalation") for m in escalations] == ["lead@example.com"]
    assert links(escalations[0]) == [] and "a@example.com, b@example.com" in escalations[0]["Message"]
    assert not any("TOKEN-SECRET" in m["Subject"] + m["Message"] for m in sns.messages)
    # and never twice
    assert sweep(table, sns, 400, ["lead@example.com"]) == 0 and len(sns.messages) == 5


def test_an_approver_who_already_voted_is_not_reminded(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com", "b@example.com"], required=2)
    tickets = {to(m, "approver"): links(m)[0].rsplit("/", 1)[-1] for m in sns.messages}
    nonce = {item["approver"]: item["nonce"] for item in table.scan()["Items"] if item["kind"] == "ticket"}
    outcome = approvals.decide(
        table, FakeSfn(), tickets["a@example.com"], decision="approve", nonce=nonce["a@example.com"], actions=["lower_memory"], now=NOW
    )
    assert outcome.status == 202
    assert sweep(table, sns, 300) == 1
    assert [to(m, "approver") for m in sns.messages[2:]] == ["b@example.com"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decided_request_is_not_reminded(table: Any, decision: str) -> None:
    sns = FakeSns()
    ask(table, sns, [])
    ticket = links(sns.messages[0])[0].rsplit("/", 1)[-1]
    nonce = next(item["nonce"] for item in table.scan()["Items"] if item["kind"] == "ticket")
    assert approvals.decide(table, FakeSfn(), ticket, decision=decision, nonce=nonce, actions=["lower_memory"], now=NOW).status == 200
    assert sweep(table, sns, 300, ["lead@example.com"]) == 0
    assert len(sns.messages) == 1
    assert "reminder" not in record(table)  # and it left the index


def test_an_expired_request_is_not_reminded(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, [])
    assert sweep(table, sns, 600, ["lead@example.com"]) == 0
    assert len(sns.messages) == 1


def test_without_escalation_contacts_only_the_approvers_are_reminded(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com"])
    assert sweep(table, sns, 450) == 1
    assert [to(m, "approver") for m in sns.messages] == ["a@example.com", "a@example.com"]


def test_the_run_knows_who_was_asked_and_when_they_were_reminded(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com", "b@example.com"])
    sweep(table, sns, 301)
    execution = "arn:aws:states:us-east-1:123456789012:execution:sm:e1"
    assert approvals.asked(table, execution) == [
        {
            "approvers": ["a@example.com", "b@example.com"],
            "askedAt": "2026-11-25T03:00:00.000Z",
            "remindedAt": "2026-11-25T03:05:01.000Z",
            "expiresAt": "2026-11-25T03:10:00.000Z",
        }
    ]
    assert approvals.asked(table, execution + "-other") == []


def test_a_reminder_that_could_not_be_sent_is_tried_again_by_the_next_sweep(table: Any) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com"])

    class DownSns(FakeSns):
        def publish(self, **kwargs: Any) -> dict[str, str]:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "down"}}, "Publish")

    with pytest.raises(ClientError):
        sweep(table, DownSns(), 300)  # type: ignore[arg-type]
    assert record(table)["reminder"] == approvals.DUE and "remindedAt" not in record(table)
    assert sweep(table, sns, 360) == 1
    assert [m["Subject"][:10] for m in sns.messages] == ["[approval ", "[reminder]"]


# ------------------------------------------------------------------------ what the waiting playbook is told, exactly
def test_the_playbook_receives_the_decision_as_its_approval_output(table: Any) -> None:
    tickets = request(table, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    outcome = approve(table, sfn, tickets, actions=["lower_memory"], comment="ok", record_url="https://x/prod/approvals/t")
    assert (outcome.status, outcome.message) == (200, "Thank you: the plan is approved and the playbook has resumed.")
    (success,) = sfn.successes
    assert success["taskToken"] == TASK_TOKEN  # the waiting task, not another
    assert json.loads(success["output"]) == {
        "decision": "approve",
        "approvedActions": ["lower_memory"],
        "approved": {"lower_memory": True},
        "approvers": ["approver"],
        "comment": "ok",
        "decidedAt": "2026-11-25T03:00:00.000Z",
        "record": "https://x/prod/approvals/t",
    }


@pytest.mark.parametrize(
    ("comment", "record_url", "cause"),
    [
        ("", "", "Rejected by approver"),
        ("not now", "", "Rejected by approver: not now"),
        ("", "https://x/prod/approvals/t", "Rejected by approver (decision record: https://x/prod/approvals/t)"),
        ("not now", "https://x/r", "Rejected by approver: not now (decision record: https://x/r)"),
    ],
)
def test_a_rejection_tells_the_playbook_who_why_and_where_the_record_is(table: Any, comment: str, record_url: str, cause: str) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    outcome = approvals.decide(
        table, sfn, tickets["approver"], decision="reject", nonce=tickets["nonce:approver"], comment=comment, record_url=record_url, now=NOW
    )
    assert (outcome.status, outcome.message) == (200, "Thank you: the plan is rejected and the playbook has resumed.")
    assert sfn.failures == [{"taskToken": TASK_TOKEN, "error": "Rejected", "cause": cause}]
    assert record(table)["status"] == approvals.REJECTED


def test_a_long_rejection_reason_is_cut_to_what_step_functions_accepts(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    outcome = approvals.decide(
        table, sfn, tickets["approver"], decision="reject", nonce=tickets["nonce:approver"], comment="x" * 40_000, now=NOW
    )
    assert outcome.status == 200
    assert len(sfn.failures[0]["cause"]) == 32_768 and sfn.failures[0]["cause"].startswith("Rejected by approver: xxx")


# ------------------------------------------------------------------------------------- N of M, and what is kept
def test_the_first_of_two_votes_is_kept_and_the_approver_told_how_many_are_needed(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    outcome = approve(table, sfn, tickets, "a@example.com", actions=["lower_memory"])
    assert (outcome.status, outcome.message) == (202, "Your approval is recorded (1 of 2); waiting for another approver.")
    assert outcome.approval["approvals"] == {"a@example.com": {"actions": ["lower_memory"], "at": "2026-11-25T03:00:00.000Z"}}
    assert record(table)["approvals"] == outcome.approval["approvals"] and sfn.successes == []
    again = approve(table, sfn, tickets, "a@example.com", actions=["lower_memory"])
    assert (again.status, again.message) == (409, "You have already approved this request; waiting for another approver.")


@pytest.mark.parametrize(
    ("first", "second", "applied"),
    [
        (
            ["raise_reserved_concurrency", "lower_memory"],
            ["lower_memory", "raise_reserved_concurrency"],
            ["raise_reserved_concurrency", "lower_memory"],
        ),
        (["raise_reserved_concurrency"], ["lower_memory"], []),
        (["request_quota_increase", "lower_memory"], ["lower_memory"], ["lower_memory"]),
    ],
    ids=["same-choice", "disjoint", "second-narrower"],
)
def test_n_of_m_applies_only_what_every_approver_ticked(table: Any, first: list[str], second: list[str], applied: list[str]) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets, "a@example.com", actions=first).status == 202
    assert approve(table, sfn, tickets, "b@example.com", actions=second).status == 200
    output = json.loads(sfn.successes[0]["output"])
    assert output["approved"] == {action: True for action in applied} and output["approvedActions"] == applied
    assert record(table)["approvedActions"] == applied


class Racing:
    """The table, with another press landing between this press's vote and its final write (two last approvers at
    the same instant): `race` runs just before the update that sets the request's final status."""

    def __init__(self, table: Any, race: Any) -> None:
        self._table, self._race = table, race

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def update_item(self, **kwargs: Any) -> Any:
        if self._race and ":approved" in kwargs.get("ExpressionAttributeValues", {}):
            race, self._race = self._race, None
            race()
        return self._table.update_item(**kwargs)


def test_two_last_approvers_at_the_same_instant_resume_the_playbook_once(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com", "c@example.com"], required=2)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets, "a@example.com").status == 202
    answers: list[approvals.Outcome] = []
    racing = Racing(table, lambda: answers.append(approve(table, sfn, tickets, "b@example.com")))
    late = approve(racing, sfn, tickets, "c@example.com")
    assert [answer.status for answer in answers] == [200]
    assert (late.status, late.message) == (409, "This approval request was already decided: approved.")
    # c's vote was recorded before b counted, so b's decision names it too; only one callback is sent
    assert len(sfn.successes) == 1
    assert json.loads(sfn.successes[0]["output"])["approvers"] == ["a@example.com", "b@example.com", "c@example.com"]


def test_a_reject_that_loses_the_race_is_told_what_was_decided(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    stale = approvals.load(table, tickets["approver"])
    assert stale is not None and approve(table, sfn, tickets).status == 200
    entry = approvals._audit_entry(stale, "reject", [], "", "", "", NOW) | {"record": ""}
    outcome = approvals._reject(table, sfn, stale, entry, NOW)
    assert (outcome.status, outcome.message) == (409, "This approval request was already decided: approved.")


def test_a_press_after_expiry_that_lost_the_race_is_told_it_expired(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    view = approvals.load(table, tickets["approver"])
    assert view is not None
    late = NOW + timedelta(seconds=600)
    entry = approvals._audit_entry(view, "reject", [], "", "", "", late) | {"record": ""}
    outcome = approvals._reject(table, sfn, view, entry, late)
    assert (outcome.status, outcome.message) == (410, "This approval request expired at 2026-11-25T03:10:00.000Z; nothing was changed.")
    assert sfn.failures == [] and record(table)["status"] == approvals.PENDING


# ------------------------------------------------------------------------------------- when the callback fails
def test_a_callback_that_fails_leaves_a_note_and_tells_the_approver_to_press_again(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    tickets = request(table)
    outcome = approve(table, FakeSfn(errors=["ThrottlingException"]), tickets)
    assert outcome.status == 503
    assert outcome.message == (
        "Your decision was NOT recorded: Step Functions did not accept it (ThrottlingException). Nothing was changed and the "
        "request is still open; press the button again."
    )
    assert record(table)["audit"][-1] == {
        "approver": "approver",
        "decision": "not delivered",
        "actions": [],
        "at": "2026-11-25T03:00:00.000Z",
        "reason": "ThrottlingException",
    }
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.getMessage() == "decision not delivered to Step Functions"
    assert (getattr(logged, "approval", None), getattr(logged, "reason", None)) == (record(table)["id"], "ThrottlingException")


@pytest.mark.parametrize("code", sorted(approvals.TASK_GONE))
def test_a_task_that_is_gone_is_told_to_the_approver_and_logged(table: Any, code: str, caplog: pytest.LogCaptureFixture) -> None:
    tickets = request(table)
    outcome = approve(table, FakeSfn(errors=[code]), tickets)
    assert (outcome.status, outcome.message) == (
        410,
        "The playbook is no longer waiting for this decision (it timed out or was stopped); nothing was changed.",
    )
    (logged,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert logged.getMessage() == "playbook no longer waiting"
    assert (getattr(logged, "approval", None), getattr(logged, "reason", None)) == (record(table)["id"], code)


def test_an_sdk_error_before_the_request_is_not_a_decision(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn(tokens=())  # the waiting task is not this one: Step Functions says it does not exist

    assert approve(table, sfn, tickets).status == 410
    assert sfn.successes == []


# ------------------------------------------------------------------------------ what the approver is told, exactly
NO_CHOICE = "No actions were chosen, so nothing was approved. Tick the actions you approve, or reject the plan."


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("unknown ticket", 404, "No such approval request."),
        ("wrong nonce", 403, "This form is not valid for this approval request; open the link from your e-mail again."),
        ("too late", 410, "This approval request expired at 2026-11-25T03:10:00.000Z; nothing was changed."),
        ("decided", 409, "This approval request was already decided: rejected."),
        ("nothing named", 400, NO_CHOICE),
        ("nothing ticked", 400, NO_CHOICE),
        ("not in the plan", 400, "The form names actions that are not in this plan; nothing was approved. Open the link again."),
    ],
)
def test_every_refusal_tells_the_approver_what_happened(table: Any, case: str, status: int, message: str) -> None:
    tickets = request(table, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    ticket, nonce, when, actions = tickets["approver"], tickets["nonce:approver"], NOW, ["lower_memory"]
    if case == "unknown ticket":
        ticket = "A" * 22
    elif case == "wrong nonce":
        nonce = "forged-nonce-000000"
    elif case == "too late":
        when = NOW + timedelta(seconds=600)
    elif case == "decided":
        assert approvals.decide(table, sfn, ticket, decision="reject", nonce=nonce, now=NOW).status == 200
    else:
        actions = {"nothing named": None, "nothing ticked": [], "not in the plan": ["lower_memory", "drop_table"]}[case]  # type: ignore[assignment]
    outcome = approvals.decide(table, sfn, ticket, decision="approve", nonce=nonce, actions=actions, now=when)
    assert (outcome.status, outcome.message) == (status, message)
    assert sfn.successes == []


def test_a_two_action_plan_without_named_actions_approves_nothing(table: Any) -> None:
    tickets = request(table, plan=TWO_ACTIONS | {"actions": TWO_ACTIONS["actions"][:2]})
    sfn = FakeSfn()
    assert approve(table, sfn, tickets).status == 400
    assert sfn.successes == [] and record(table)["status"] == approvals.PENDING


# ------------------------------------------------------------------------------------------- what is recorded
def test_the_audit_records_who_decided_what_when_and_from_where(table: Any) -> None:
    tickets = request(table, approvers=["a@example.com", "b@example.com"], required=2, plan=TWO_ACTIONS)
    sfn = FakeSfn()
    agent = "Mozilla/5.0 " + "x" * 400
    approve(
        table,
        sfn,
        tickets,
        "a@example.com",
        actions=["lower_memory"],
        comment="ok",
        source_ip="203.0.113.9",
        user_agent=agent,
        record_url="https://x/r",
    )
    later = NOW + timedelta(seconds=5)
    assert (
        approvals.decide(table, sfn, tickets["b@example.com"], decision="reject", nonce=tickets["nonce:b@example.com"], now=later).status
        == 200
    )
    digest = approvals.plan_hash(TWO_ACTIONS)
    assert record(table)["audit"] == [
        {
            "approver": "a@example.com",
            "decision": "approve",
            "actions": ["lower_memory"],
            "comment": "ok",
            "sourceIp": "203.0.113.9",
            "userAgent": agent[:300],
            "at": "2026-11-25T03:00:00.000Z",
            "planHash": digest,
            "record": "https://x/r",
        },
        {
            "approver": "b@example.com",
            "decision": "reject",
            "actions": [],
            "comment": "",
            "sourceIp": "",
            "userAgent": "",
            "at": "2026-11-25T03:00:05.000Z",
            "planHash": digest,
            "record": "",
        },
    ]


def test_an_approval_without_comment_or_record_tells_the_playbook_none(table: Any) -> None:
    tickets = request(table)
    sfn = FakeSfn()
    assert approve(table, sfn, tickets).status == 200
    output = json.loads(sfn.successes[0]["output"])
    assert (output["comment"], output["record"]) == ("", "")


def test_the_decision_is_logged_without_the_comment_the_record_or_the_token(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    tickets = request(table)
    approve(table, FakeSfn(), tickets, comment="private words", source_ip="203.0.113.9", user_agent="ua", record_url="https://x/r")
    (logged,) = [r for r in caplog.records if r.getMessage() == "approval decision"]
    fields = {
        key: getattr(logged, key) for key in ("approver", "decision", "actions", "sourceIp", "userAgent", "at", "planHash", "playbook")
    }
    assert fields == {
        "approver": "approver",
        "decision": "approve",
        "actions": ["raise_reserved_concurrency"],
        "sourceIp": "203.0.113.9",
        "userAgent": "ua",
        "at": "2026-11-25T03:00:00.000Z",
        "planHash": approvals.plan_hash(PLAN),
        "playbook": "lambda-throttling",
    }
    assert not hasattr(logged, "comment") and not hasattr(logged, "record")
    assert not any("private words" in str(vars(r)) or "TOKEN-SECRET" in str(vars(r)) for r in caplog.records)


def test_a_request_is_announced_on_the_approval_topic_and_logged(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    sns = FakeSns()
    ask(table, sns, ["a@example.com", "b@example.com"], required=2)
    assert [(m["TopicArn"], to(m, "approver")) for m in sns.messages] == [
        ("arn:aws:sns:us-east-1:123456789012:approvals", "a@example.com"),
        ("arn:aws:sns:us-east-1:123456789012:approvals", "b@example.com"),
    ]
    subject, body = approvals.email_text("lambda-throttling", TWO_ACTIONS, links(sns.messages[0])[0], "2026-11-25T03:10:00.000Z", 2)
    assert (sns.messages[0]["Subject"], sns.messages[0]["Message"]) == (subject, body)
    (logged,) = [r for r in caplog.records if r.getMessage() == "approval requested"]
    assert (logged.playbook, logged.execution, logged.approvers, logged.expiresAt) == (  # type: ignore[attr-defined]
        "lambda-throttling",
        "arn:aws:states:us-east-1:123456789012:execution:sm:e1",
        2,
        "2026-11-25T03:10:00.000Z",
    )


def test_every_record_of_a_request_is_kept_ninety_days(table: Any) -> None:
    ask(table, FakeSns(), ["a@example.com"])
    expires = int((NOW + timedelta(days=90)).timestamp())
    items = table.scan()["Items"]
    assert sorted(item["kind"] for item in items) == ["approval", "run", "ticket"]
    assert all(item["ttl"] == expires for item in items)


def test_a_callback_that_never_reaches_step_functions_is_not_recorded(table: Any) -> None:
    """No connection (botocore's own error, not a service answer): the approver is told and can press again."""
    tickets = request(table)

    class Unreachable(FakeSfn):
        def send_task_success(self, **kwargs: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com")

    outcome = approve(table, Unreachable(), tickets)
    assert outcome.status == 503 and "EndpointConnectionError" in outcome.message
    fresh = record(table)
    assert fresh["status"] == approvals.PENDING and fresh["approvals"] == {} and "decidedAt" not in fresh
    assert approve(table, FakeSfn(), tickets).status == 200


@pytest.mark.parametrize(
    ("ids", "repeated"),
    [(["a1", "t1", "a1", "t2"], "a1"), (["a1", "t1", "a2", "t1"], "t1")],
    ids=["request-id", "ticket-id"],
)
def test_a_repeated_id_never_overwrites_a_request_or_its_link(
    table: Any, monkeypatch: pytest.MonkeyPatch, ids: list[str], repeated: str
) -> None:
    # GIVEN a request approved through its link, and an id generator that repeats one id (ids are random: this is the
    # defence behind them)
    queue = iter(ids)
    monkeypatch.setattr(approvals, "new_id", lambda: next(queue))
    tickets = request(table)
    approvals.decide(table, FakeSfn(), tickets["approver"], decision="approve", nonce=tickets["nonce:approver"], now=NOW)
    before = table.get_item(Key={"id": repeated}, ConsistentRead=True)["Item"]
    # WHEN a second request draws the same id
    with pytest.raises(ClientError) as refused:
        request(table)
    # THEN DynamoDB refuses the write and the decided request (or the approver's link) is as it was
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert table.get_item(Key={"id": repeated}, ConsistentRead=True)["Item"] == before
