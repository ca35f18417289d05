"""The approval API behind the e-mailed link: prefetch-safe, single use, expiring, N-of-M, and it never leaks the token."""

from __future__ import annotations

import secrets
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from approval_helpers import approvals_table, calls, start_until_approval, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import WEB_FUNCTION, api_event, click, read_form
from playbooks.local.recorder import RECORDER

PENDING_STATES = ("RUNNING",)


def served_form(account: LocalAccount, ticket: str, button: str = "approve") -> str:
    """What the served page's form submits when the approver presses `button` (an approver's own POST)."""
    form = read_form(str(account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))["body"]))
    assert form is not None
    return urlencode(form.submission(button))


def status(account: LocalAccount, execution: str) -> str:
    return str(account.describe(execution)["status"])


def test_get_and_head_never_change_anything() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        before = approvals_table(account)
        # GIVEN a mail scanner that opens the link many ways
        for method in ("GET", "HEAD", "GET"):
            for agent in ("Mozilla/5.0 (Safe Links scanner)", "Mimecast", ""):
                answer = account.invoke_handler(WEB_FUNCTION, api_event(method, f"/approvals/{ticket}", user_agent=agent))
                assert answer["statusCode"] == 200
        # THEN nothing was decided or written, and the playbook still waits
        assert approvals_table(account) == before
        assert calls("states:SendTaskSuccess") == calls("states:SendTaskFailure") == 0
        assert status(account, execution) == "RUNNING"


def test_replay_answers_409_and_the_task_resumes_exactly_once() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        form = served_form(account, ticket)
        # the same form submitted twice (a double click, a resubmitted page)
        first, second = (account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", form)) for _ in range(2))
        assert (first["statusCode"], second["statusCode"]) == (200, 409)
        assert "already decided" in second["body"]
        assert calls("states:SendTaskSuccess") == 1
        wait_for(lambda: status(account, execution) == "SUCCEEDED", "the playbook to finish")


def test_two_concurrent_posts_make_one_decision() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        body = served_form(account, ticket)
        barrier = threading.Barrier(2)
        answers: list[int] = []

        def post() -> None:
            barrier.wait(timeout=10)
            answers.append(account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", body))["statusCode"])

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(answers) == [200, 409]
        assert calls("states:SendTaskSuccess") == 1
        wait_for(lambda: status(account, execution) == "SUCCEEDED", "the playbook to finish")


def test_expired_request_answers_410_and_changes_nothing() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account, {"approvalTimeoutSeconds": 3600, "verifyWaitSeconds": 60})
        # GIVEN the approver opened the page in time but presses Approve after the request expired: the hour passes on
        # the account's clock once the request is recorded, so the task's timeout and the record's expiry are both behind
        # the click however slowly the run goes (a wall-clock timeout could fire before a slow run recorded the request)
        form = served_form(account, ticket)
        account.expire_waiting_tasks()
        wait_for(lambda: status(account, execution) == "SUCCEEDED", "the approval to time out")
        sent_before = calls("states:SendTaskSuccess")
        answer = account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", form))
        assert answer["statusCode"] == 410
        assert "expired" in answer["body"]
        assert calls("states:SendTaskSuccess") == sent_before  # the late click sent nothing
        assert not any(c.api == "lambda:PutFunctionConcurrency" and c.principal != "world" for c in RECORDER.calls)


def test_unknown_and_malformed_ids_are_404_without_a_scan() -> None:
    with LocalAccount() as account:
        start_until_approval(account)
        reads_before = calls("dynamodb:GetItem")
        for ticket in ("short", "a" * 200, "../../etc/passwd", "%00%00", "x" * 21 + "!"):
            assert account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))["statusCode"] == 404
        assert calls("dynamodb:GetItem") == reads_before  # malformed: not even looked up
        forged = secrets.token_urlsafe(16)
        assert account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{forged}"))["statusCode"] == 404
        well_formed = urlencode({"decision": "approve", "nonce": secrets.token_urlsafe(24)})
        assert account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{forged}/decision", well_formed))["statusCode"] == 404
        assert calls("dynamodb:Scan") == 0


def test_the_task_token_appears_in_no_log_email_link_or_page() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        token = next(item["taskToken"]["S"] for item in approvals_table(account) if "taskToken" in item)
        page = account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))["body"]
        click(account, ticket, "approve", comment="ok from on-call")
        wait_for(lambda: status(account, execution) == "SUCCEEDED", "the playbook to finish")
        texts = [page, ticket, *account.logs.lines]
        texts += [str(c.params.get("Subject", "")) + str(c.params.get("Message", "")) for c in RECORDER.calls if c.api == "sns:Publish"]
        assert len(account.logs.lines) > 5  # the handlers did log
        assert not [text for text in texts if token in text]


def test_two_of_two_approvers_each_with_their_own_link() -> None:
    with LocalAccount(parameters={"ApproverEmails": "ana@example.com,ben@example.com", "RequiredApprovals": "2"}) as account:
        execution, tickets = start_until_approval(account, approvers=2)
        assert len(set(tickets)) == 2
        first = click(account, tickets[0], "approve")
        assert first["statusCode"] == 202
        assert click(account, tickets[0], "approve")["statusCode"] == 409  # the same person twice is not two approvals
        assert status(account, execution) == "RUNNING" and calls("states:SendTaskSuccess") == 0
        assert click(account, tickets[1], "approve")["statusCode"] == 200
        wait_for(lambda: status(account, execution) == "SUCCEEDED", "the playbook to finish")
        assert calls("states:SendTaskSuccess") == 1


@pytest.fixture(scope="module")
def waiting() -> Any:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        yield account, execution, ticket


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    suffix=st.sampled_from(["", "/decision"]),
    ticket=st.one_of(st.text(max_size=40), st.just("REAL")),
    body=st.one_of(
        st.none(),
        st.text(max_size=300),
        st.builds(urlencode, st.dictionaries(st.sampled_from(["decision", "nonce", "comment", "actions", "x"]), st.text(max_size=40))),
    ),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]),
    agent=st.text(max_size=100),
)
def test_malformed_requests_never_500_and_never_decide(
    waiting: Any, method: str, suffix: str, ticket: str, body: str | None, content_type: str, agent: str
) -> None:
    account, execution, real = waiting
    ticket = real if ticket == "REAL" else ticket.replace("/", "_")
    answer = account.invoke_handler(
        WEB_FUNCTION, api_event(method, f"/approvals/{ticket}{suffix}", body, user_agent=agent, content_type=content_type)
    )
    assert answer["statusCode"] < 500
    assert calls("states:SendTaskSuccess") == calls("states:SendTaskFailure") == 0
    assert status(account, execution) in PENDING_STATES
