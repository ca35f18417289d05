"""The approval form is the truth: what the page's form submits is what is decided, and nothing else is.

Requests here are what an attacker or a broken client sends; an approver's own presses go through the served form
(`click` submits exactly what the form would)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from approval_helpers import SIX, calls, page, start_cost_spike_until_approval

from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import WEB_FUNCTION, api_event, read_form, read_nonce

OWN_ORIGIN = "https://approvals.local.invalid"


def post(account: LocalAccount, ticket: str, fields: list[tuple[str, str]] | str, **event: Any) -> dict[str, Any]:
    body = fields if isinstance(fields, str) else urlencode(fields)
    return dict(account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", body, **event)))


def decided() -> int:
    return calls("states:SendTaskSuccess") + calls("states:SendTaskFailure")


@pytest.fixture(scope="module")
def six_actions() -> Any:
    """cost-spike waiting for approval of its six-action plan (the tests below leave it undecided)."""
    with LocalAccount() as account:
        execution, ticket = start_cost_spike_until_approval(account)
        yield account, execution, ticket


def still_waiting(account: LocalAccount, execution: str) -> bool:
    return decided() == 0 and account.describe(execution)["status"] == "RUNNING"


def test_every_checkbox_is_inside_the_form_and_the_action_is_absolute(six_actions: Any) -> None:
    account, _, ticket = six_actions
    form = read_form(page(account, ticket))
    assert form is not None
    # a checkbox per action, ticked, inside the form (a browser submits only what is inside it)
    assert form.checkboxes == [("actions", action, True) for action in SIX]
    assert form.action == f"/approvals/{ticket}/decision"
    assert {name for name, _ in form.buttons} == {"decision"}


@pytest.mark.parametrize(
    "choice",
    [pytest.param([], id="every-box-unticked"), pytest.param(None, id="no-actions-field")],
)
def test_no_choice_on_a_multi_action_plan_approves_nothing(six_actions: Any, choice: list[str] | None) -> None:
    account, execution, ticket = six_actions
    nonce = read_nonce(page(account, ticket))
    if choice is None:  # a client that leaves the choice out altogether
        answer = post(account, ticket, [("nonce", nonce), ("comment", ""), ("decision", "approve")], origin=OWN_ORIGIN)
    else:  # the served form with every box unticked
        answer = post(account, ticket, read_form(page(account, ticket)).submission("approve", tick=choice), origin=OWN_ORIGIN)  # type: ignore[union-attr]
    assert answer["statusCode"] == 400
    assert "nothing was approved" in answer["body"]
    assert still_waiting(account, execution)


@pytest.mark.parametrize("field", ["decision", "nonce", "comment"])
def test_a_repeated_single_valued_field_is_refused(six_actions: Any, field: str) -> None:
    account, execution, ticket = six_actions
    fields = read_form(page(account, ticket)).submission("approve")  # type: ignore[union-attr]
    second = {"decision": "reject", "nonce": read_nonce(page(account, ticket)), "comment": "second"}[field]
    answer = post(account, ticket, [*fields, (field, second)], origin=OWN_ORIGIN)
    assert answer["statusCode"] == 400
    assert still_waiting(account, execution)


def test_a_json_body_with_a_repeated_key_is_refused(six_actions: Any) -> None:
    account, execution, ticket = six_actions
    nonce = read_nonce(page(account, ticket))
    body = f'{{"decision": "reject", "nonce": "{nonce}", "actions": {json.dumps(SIX)}, "decision": "approve"}}'
    assert post(account, ticket, body, content_type="application/json")["statusCode"] == 400
    assert still_waiting(account, execution)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({"origin": "null"}, id="opaque-origin"),
        pytest.param({"origin": "http://approvals.local.invalid"}, id="other-scheme"),
        pytest.param({"referer": "https://evil.example/phish"}, id="foreign-referer"),
    ],
)
def test_a_cross_site_post_with_a_valid_nonce_is_refused(six_actions: Any, headers: dict[str, str]) -> None:
    account, execution, ticket = six_actions
    fields = read_form(page(account, ticket)).submission("approve")  # type: ignore[union-attr]
    event = api_event("POST", f"/approvals/{ticket}/decision", urlencode(fields))
    event["headers"] |= headers
    event["multiValueHeaders"] |= {key: [value] for key, value in headers.items()}
    answer = account.invoke_handler(WEB_FUNCTION, event)
    assert answer["statusCode"] == 403
    assert still_waiting(account, execution)


def test_actions_the_plan_does_not_have_approve_nothing(six_actions: Any) -> None:
    account, execution, ticket = six_actions
    fields = [*read_form(page(account, ticket)).submission("approve", tick=SIX[:1]), ("actions", "delete_the_bucket")]  # type: ignore[union-attr]
    assert post(account, ticket, fields, origin=OWN_ORIGIN)["statusCode"] == 400
    assert still_waiting(account, execution)
