"""The approval page and its POST, through the API's own resolver with API Gateway events (no deployed account):
the approver reads the page, ticks boxes and presses a button of the served form; the playbook receives what was
ticked, and nothing the form did not send is ever decided."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from approval_fakes import FakeSfn, FakeSns

import approval_api
import approvals
from playbooks.local.approval_web import api_event, read_form
from shared import clock

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
EXECUTE_API = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
STAGE = "prod"
RAISE: dict[str, Any] = {
    "id": "raise_reserved_concurrency",
    "api": "lambda:PutFunctionConcurrency",
    "target": "ingest-handler",
    "description": "Raise reserved concurrency from 100 to 200",
    "before": {"ReservedConcurrentExecutions": 100},
    "after": {"ReservedConcurrentExecutions": 200},
    "rollback": None,
}
MEMORY: dict[str, Any] = {
    "id": "lower_memory",
    "api": "lambda:UpdateFunctionConfiguration",
    "target": "transform-handler",
    "description": "Lower memory to 512 MB",
    "before": {"Timeout": 60, "MemorySize": 1024},
    "after": {"Timeout": 60, "MemorySize": 512},
    "rollback": None,
}
RETENTION: dict[str, Any] = {
    "id": "set_log_retention",
    "api": "logs:PutRetentionPolicy",
    "target": "/aws/lambda/ingest-handler",
    "description": "Keep logs for 30 days",
    "before": {},
    "after": {"retentionInDays": 30},
    "rollback": None,
}
ONE_ACTION: dict[str, Any] = {
    "case": "function-level",
    "summary": "ingest-handler is throttled at its reserved concurrency.",
    "evidence": ["420 throttles in 5 minutes", "concurrency at its reservation of 100"],
    "recommendations": [],
    "actions": [RAISE],
}
TWO_ACTIONS = ONE_ACTION | {
    "actions": [RAISE, MEMORY],
    "recommendations": ["Batch small files before ingest", "Move the nightly load out of peak hours"],
}
THREE_ACTIONS = ONE_ACTION | {"actions": [RAISE, MEMORY, RETENTION]}
# What every page of TWO_ACTIONS shows of its plan, pending or decided: the summary and the evidence, then the actions
# with each change's before and after, and the recommendations.
TWO_ACTIONS_EVIDENCE = [
    "ingest-handler is throttled at its reserved concurrency.",
    "Evidence",
    "420 throttles in 5 minutes",
    "concurrency at its reservation of 100",
]
TWO_ACTIONS_TABLE = [
    "Proposed actions",
    "Action",
    "Before → after",
    "Raise reserved concurrency from 100 to 200",
    "lambda:PutFunctionConcurrency",
    "on",
    "ingest-handler",
    "{",
    '- "ReservedConcurrentExecutions": 100',
    '+ "ReservedConcurrentExecutions": 200',
    "}",
    "Lower memory to 512 MB",
    "lambda:UpdateFunctionConfiguration",
    "on",
    "transform-handler",
    "{",
    '- "MemorySize": 1024,',
    '+ "MemorySize": 512,',
    '"Timeout": 60',
    "}",
    "Recommendations (not automated)",
    "Batch small files before ingest",
    "Move the nightly load out of peak hours",
]


@dataclass
class Site:
    """The approval API as a browser reaches it on `host`; its table, the Step Functions it calls back, its clock."""

    table: Any
    sfn: FakeSfn
    context: Any
    host: str = EXECUTE_API
    now: datetime = NOW
    emails: FakeSns = field(default_factory=FakeSns)

    def ask(self, plan: dict[str, Any], approvers: list[str] | None = None, required: int = 1) -> dict[str, str]:
        """A playbook asks for approval; returns each approver's ticket, read from the link in their e-mail."""
        first = len(self.emails.messages)
        approvals.request_approval(
            self.table,
            self.emails,
            task_token="TOKEN-SECRET",
            execution="arn:aws:states:us-east-1:123456789012:execution:lambda-throttling:incident-42",
            playbook="lambda-throttling",
            plan=plan,
            timeout_seconds=600,
            approvers=approvers or [],
            required_approvals=required,
            base_url=f"https://{self.host}/{STAGE}",
            topic_arn="arn:aws:sns:us-east-1:123456789012:approvals",
            now=self.now,
        )
        tickets = {}
        for message in self.emails.messages[first:]:
            link = next(word for word in message["Message"].split() if "/approvals/" in word)
            who = message.get("MessageAttributes", {}).get("approver", {}).get("StringValue", approvals.UNNAMED_APPROVER)
            tickets[who] = link.rsplit("/", 1)[-1]
        return tickets

    def url(self, ticket: str) -> str:
        """The page's address as the e-mail gives it."""
        prefix = f"/{STAGE}" if ".execute-api." in self.host else ""
        return f"{'http' if self.host.startswith(('127.', 'localhost')) else 'https'}://{self.host}{prefix}/approvals/{ticket}"

    def request(self, method: str, url: str, body: str | None = None, **event: Any) -> dict[str, Any]:
        """What API Gateway hands the function for a request to `url`: on an execute-api domain the stage is the
        first path segment and the function sees the rest (a URL without the stage reaches no route at all)."""
        path = urlsplit(url).path
        if ".execute-api." in self.host:
            if not path.startswith(f"/{STAGE}/"):
                return {"statusCode": 403, "body": '{"message":"Missing Authentication Token"}'}
            path = path.removeprefix(f"/{STAGE}")
        answer = approval_api.handler(api_event(method, path, body, host=self.host, **event), self.context)
        return dict(answer)

    def page(self, ticket: str) -> str:
        answer = self.request("GET", self.url(ticket))
        assert answer["statusCode"] == 200, answer
        return str(answer["body"])

    def press(self, ticket: str, button: str, tick: list[str] | None = None, comment: str = "", **event: Any) -> dict[str, Any]:
        """Open the link, tick exactly `tick` (None: as served), write `comment`, press `button`: the browser POSTs the
        served form's fields to the form's own action, with the page's origin."""
        form = read_form(self.page(ticket))
        assert form is not None, "the page has no form"
        body = urlencode(form.submission(button, tick=tick, comment=comment))
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url(ticket)))
        return self.request("POST", urljoin(self.url(ticket), form.action), body, **({"origin": origin} | event))

    def post(self, ticket: str, body: str, **event: Any) -> dict[str, Any]:
        return self.request("POST", self.url(ticket) + "/decision", body, **event)

    def received(self) -> dict[str, Any]:
        """What the waiting playbook received as its approval state's output."""
        assert len(self.sfn.successes) == 1, self.sfn.successes
        return dict(json.loads(self.sfn.successes[0]["output"]))

    def undecided(self) -> bool:
        return self.sfn.successes == self.sfn.failures == []


@pytest.fixture
def site(approvals_table: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> Site:
    sfn = FakeSfn()
    here = Site(table=approvals_table, sfn=sfn, context=lambda_context)
    monkeypatch.setenv("APPROVALS_TABLE", approvals_table.name)
    monkeypatch.setattr(approval_api, "client", lambda service: {"stepfunctions": sfn}[service])
    monkeypatch.setattr(clock, "now", lambda: here.now)  # the page and the decision read the site's clock
    return here


class Reader(HTMLParser):
    """What the approver reads: the text of the page's body, piece by piece, and the classes it is marked with."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.marked: list[tuple[str, str]] = []  # (class, text) of each span and paragraph with a class
        self.labels: list[str] = []  # each label's `for`
        self.ids: list[str] = []
        self._class: list[str] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._skip = tag in ("style", "title")
        self._class.append(values.get("class") or "")
        if tag == "label" and values.get("for"):
            self.labels.append(str(values["for"]))
        if values.get("id"):
            self.ids.append(str(values["id"]))

    def handle_endtag(self, tag: str) -> None:
        self._skip = False
        if self._class:
            self._class.pop()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._class and self._class[-1]:
            self.marked.append((self._class[-1], data))
        for line in data.split("\n"):
            if line.strip():
                self.texts.append(" ".join(line.split()))


def read(page: str) -> Reader:
    reader = Reader()
    reader.feed(page)
    reader.close()
    return reader


# ------------------------------------------------------------------------------------------ what the form offers
@pytest.mark.parametrize("plan", [TWO_ACTIONS, THREE_ACTIONS], ids=["two-actions", "three-actions"])
def test_every_action_has_a_ticked_checkbox_inside_the_form_with_both_buttons(site: Site, plan: dict[str, Any]) -> None:
    ticket = site.ask(plan)["approver"]
    page = site.page(ticket)
    form = read_form(page)
    assert form is not None
    ids = [action["id"] for action in plan["actions"]]
    assert form.checkboxes == [("actions", action, True) for action in ids]
    assert form.buttons == [("decision", "approve"), ("decision", "reject")]
    assert [name for name, _ in form.fields] == ["nonce"] and list(form.textareas) == ["comment"]
    # each description is the label of its own box (a bigger target), and every label ticks a box that exists
    reader = read(page)
    assert reader.labels == [f"action-{action}" for action in ids]
    assert set(reader.labels) <= set(reader.ids)


def test_a_single_action_plan_names_its_one_action_without_a_checkbox(site: Site) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    page = site.page(ticket)
    form = read_form(page)
    assert form is not None
    assert form.checkboxes == [] and ("actions", RAISE["id"]) in form.fields
    assert read(page).labels == []  # no label points at a box that is not there
    texts = read(page).texts
    # no hint to untick before the actions; after the one action, only the comment and the buttons
    assert texts[texts.index("Proposed actions") - 1] == ONE_ACTION["evidence"][-1]
    assert texts[texts.index("}") + 1 :] == ["Comment", "Approve", "Reject"]
    assert site.press(ticket, "approve")["statusCode"] == 200
    assert site.received()["approved"] == {RAISE["id"]: True}


# ------------------------------------------------------------------------ what is ticked is what the playbook gets
@pytest.mark.parametrize(
    "tick",
    [["raise_reserved_concurrency", "set_log_retention"], ["lower_memory"], ["set_log_retention"]],
    ids=["first-and-last", "middle-only", "last-only"],
)
def test_the_playbook_receives_exactly_the_actions_left_ticked(site: Site, tick: list[str]) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    answer = site.press(ticket, "approve", tick=tick)
    assert answer["statusCode"] == 200, answer["body"]
    received = site.received()
    assert received["approved"] == {action: True for action in tick}
    assert received["approvedActions"] == tick  # in plan order
    assert received["decision"] == "approve" and received["approvers"] == [approvals.UNNAMED_APPROVER]


def test_the_playbook_receives_every_action_when_the_boxes_stay_ticked(site: Site) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    assert site.press(ticket, "approve", comment="go ahead")["statusCode"] == 200
    received = site.received()
    assert received["approved"] == {action["id"]: True for action in THREE_ACTIONS["actions"]}
    assert received["comment"] == "go ahead" and received["decidedAt"] == clock.iso(NOW)


def test_unticking_every_box_approves_nothing_and_the_request_stays_open(site: Site) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    answer = site.press(ticket, "approve", tick=[])
    assert answer["statusCode"] == 400 and "nothing was approved" in answer["body"]
    assert site.undecided()
    assert site.press(ticket, "approve", tick=["lower_memory"])["statusCode"] == 200
    assert site.received()["approved"] == {"lower_memory": True}


def test_a_json_post_names_its_actions_too(site: Site) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    nonce = dict(read_form(site.page(ticket)).fields)["nonce"]  # type: ignore[union-attr]
    body = json.dumps({"decision": "approve", "nonce": nonce, "actions": ["set_log_retention"]})
    assert site.post(ticket, body, content_type="application/json; charset=utf-8")["statusCode"] == 200
    assert site.received()["approved"] == {"set_log_retention": True}


# ----------------------------------------------------------------------- what is refused (and then changes nothing)
def submission(site: Site, ticket: str, button: str = "approve") -> list[tuple[str, str]]:
    form = read_form(site.page(ticket))
    assert form is not None
    return form.submission(button)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(("decision", "reject"), id="a-second-decision"),
        pytest.param(("decision", ""), id="a-second-empty-decision"),
        pytest.param(("comment", "again"), id="a-second-comment"),
        pytest.param(("nonce", ""), id="a-second-empty-nonce"),
    ],
)
def test_a_repeated_single_valued_field_is_refused(site: Site, extra: tuple[str, str]) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    answer = site.post(ticket, urlencode([*submission(site, ticket), extra]))
    assert answer["statusCode"] == 400 and "nothing was changed" in answer["body"]
    assert site.undecided()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"decision": "reject", "nonce": "NONCE", "decision": "approve", "actions": ["lower_memory"]}', id="repeated-key"),
        pytest.param('["decision", "approve"]', id="not-an-object"),
        pytest.param('{"decision": "approve", "nonce": "NONCE", "actions": ["lower_memory"]', id="truncated"),
    ],
)
def test_a_malformed_json_body_is_refused(site: Site, body: str) -> None:
    ticket = site.ask(THREE_ACTIONS)["approver"]
    nonce = dict(submission(site, ticket))["nonce"]
    answer = site.post(ticket, body.replace("NONCE", nonce), content_type="application/json")
    assert answer["statusCode"] == 400
    assert site.undecided()


def test_a_body_of_more_fields_than_the_limit_is_refused_whole(site: Site) -> None:
    """The form sends at most 53 fields (50 actions, the decision, the nonce, the comment); the parser stops at 60
    instead of building whatever a client sends. Empty fields count: they cost the parser as much."""
    ticket = site.ask(THREE_ACTIONS)["approver"]
    fields = urlencode(submission(site, ticket))
    padding = 60 - (fields.count("&") + 1)
    assert site.post(ticket, fields + "&" * padding)["statusCode"] == 200  # 60 fields, 54 of them empty: parsed
    site.sfn.successes.clear()
    ticket = site.ask(THREE_ACTIONS)["approver"]
    fields = urlencode(submission(site, ticket))
    answer = site.post(ticket, fields + "&" * (padding + 1))  # 61
    assert answer["statusCode"] == 400
    assert site.undecided()


def test_an_empty_post_is_refused(site: Site) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    assert site.post(ticket, "")["statusCode"] == 400
    assert site.undecided()


# ------------------------------------------------------------------------------------------- where the form posts
@pytest.mark.parametrize(
    ("host", "record"),
    [
        (EXECUTE_API, f"https://{EXECUTE_API}/prod/approvals/"),
        ("approvals.example.com", "https://approvals.example.com/approvals/"),
        ("127.0.0.1:8765", "http://127.0.0.1:8765/approvals/"),
        ("localhost:8765", "http://localhost:8765/approvals/"),
    ],
    ids=["execute-api", "custom-domain", "loopback", "localhost"],
)
def test_the_form_posts_to_its_own_site_and_the_decision_record_opens_the_page(site: Site, host: str, record: str) -> None:
    site.host = host
    ticket = site.ask(ONE_ACTION)["approver"]
    assert site.press(ticket, "approve", comment="ok")["statusCode"] == 200
    # the playbook's report links to the page, which now shows who decided
    link = site.received()["record"]
    assert link == record + ticket
    shown = read(str(site.request("GET", link)["body"])).texts
    assert f"{clock.iso(NOW)}: {approvals.UNNAMED_APPROVER} approve ({RAISE['id']}): “ok”" in shown
    assert read_form(str(site.request("GET", link)["body"])) is None  # decided: nothing left to press


def test_without_an_api_domain_the_host_header_names_the_site(site: Site, lambda_context: Any) -> None:
    """A test invoke from the console carries no domainName; the Host header is the page's own origin."""
    site.host = "approvals.example.com"
    ticket = site.ask(ONE_ACTION)["approver"]
    nonce = dict(submission(site, ticket))["nonce"]
    event = api_event("POST", f"/approvals/{ticket}/decision", urlencode({"decision": "approve", "nonce": nonce}), host=site.host)
    event["requestContext"].pop("domainName")
    event["headers"]["origin"] = "https://approvals.example.com"
    assert approval_api.handler(event, lambda_context)["statusCode"] == 200
    assert site.received()["record"] == f"https://approvals.example.com/approvals/{ticket}"


def test_a_reject_tells_the_playbook_who_why_and_where_the_record_is(site: Site) -> None:
    ticket = site.ask(TWO_ACTIONS)["approver"]
    assert site.press(ticket, "reject", comment="not during the batch window")["statusCode"] == 200
    (failure,) = site.sfn.failures
    assert failure["error"] == "Rejected"
    assert failure["cause"] == (
        f"Rejected by {approvals.UNNAMED_APPROVER}: not during the batch window (decision record: {site.url(ticket)})"
    )


# -------------------------------------------------------------------------------------------- cross-site requests
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({"origin": "null"}, id="opaque-origin"),
        pytest.param({"origin": f"http://{EXECUTE_API}"}, id="other-scheme"),
        pytest.param({"referer": "https://evil.example/phish"}, id="foreign-referer"),
        pytest.param({"origin": "https://evil.example", "referer": f"https://{EXECUTE_API}/prod/approvals/x"}, id="origin-wins"),
    ],
)
def test_a_cross_site_post_with_a_valid_nonce_is_refused(site: Site, headers: dict[str, str]) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    event = api_event("POST", f"/approvals/{ticket}/decision", urlencode(submission(site, ticket)), host=site.host)
    event["headers"] |= headers
    answer = approval_api.handler(event, site.context)
    assert answer["statusCode"] == 403 and "not sent from the approval page" in answer["body"]
    assert site.undecided()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": f"https://{EXECUTE_API}"}, id="own-origin"),
        pytest.param({"origin": f"HTTPS://{EXECUTE_API.upper()}"}, id="own-origin-any-case"),
        pytest.param({"referer": f"https://{EXECUTE_API}/prod/approvals/x"}, id="own-referer"),
        pytest.param({}, id="no-browser-headers"),
    ],
)
def test_a_same_site_post_is_taken(site: Site, headers: dict[str, str]) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    event = api_event("POST", f"/approvals/{ticket}/decision", urlencode(submission(site, ticket)), host=site.host)
    event["headers"] |= headers
    assert approval_api.handler(event, site.context)["statusCode"] == 200
    assert site.received()["approved"] == {RAISE["id"]: True}


def test_a_loopback_page_accepts_its_own_http_origin(site: Site) -> None:
    site.host = "127.0.0.1:8765"
    ticket = site.ask(ONE_ACTION)["approver"]
    assert site.press(ticket, "approve", origin="https://127.0.0.1:8765")["statusCode"] == 403
    assert site.press(ticket, "approve", origin="http://127.0.0.1:8765")["statusCode"] == 200


# ----------------------------------------------------------------------------------------- what the approver reads
def test_the_pending_page_reads_as_a_review(site: Site) -> None:
    ticket = site.ask(TWO_ACTIONS | {"dryRun": True})["approver"]
    answer = site.request("GET", site.url(ticket))
    assert answer["statusCode"] == 200
    assert read(str(answer["body"])).texts == [
        "Approve lambda-throttling?",
        "Dry run: approving records the decision only; nothing will be changed.",
        "Playbook",
        "lambda-throttling",
        "· execution",
        "incident-42",
        "Status:",
        "pending",
        "· expires 2026-11-25T03:10:00.000Z · approvals needed: 1 · you are approver",
        *TWO_ACTIONS_EVIDENCE,
        "Untick any action you do not approve; only the ticked actions are applied.",
        *TWO_ACTIONS_TABLE,
        "Comment",
        "Approve",
        "Reject",
    ]


def test_the_dry_run_banner_heads_a_dry_run_page_only(site: Site) -> None:
    dry = read(site.page(site.ask(ONE_ACTION | {"dryRun": True})["approver"]))
    assert dry.texts[1] == "Dry run: approving records the decision only; nothing will be changed."
    assert ("dry", dry.texts[1]) in dry.marked
    assert not any("Dry run" in text for text in read(site.page(site.ask(ONE_ACTION)["approver"])).texts)


def test_a_decided_page_shows_who_decided_what_and_offers_nothing_to_press(site: Site) -> None:
    tickets = site.ask(TWO_ACTIONS, approvers=["ana@example.com", "ben@example.com"], required=2)
    assert (
        site.press(tickets["ana@example.com"], "approve", tick=["raise_reserved_concurrency", "lower_memory"], comment="both")["statusCode"]
        == 202
    )
    site.now += timedelta(seconds=30)
    assert site.press(tickets["ben@example.com"], "reject")["statusCode"] == 200
    page = site.page(tickets["ana@example.com"])
    assert read_form(page) is None
    reader = read(page)
    assert reader.labels == []
    assert reader.texts == [
        "Approve lambda-throttling?",
        "Playbook",
        "lambda-throttling",
        "· execution",
        "incident-42",
        "Status:",
        "rejected",
        "· expires 2026-11-25T03:10:00.000Z · approvals needed: 2 · you are ana@example.com",
        *TWO_ACTIONS_EVIDENCE,
        *TWO_ACTIONS_TABLE,
        "Decisions",
        "2026-11-25T03:00:00.000Z: ana@example.com approve (raise_reserved_concurrency, lower_memory): “both”",
        "2026-11-25T03:00:30.000Z: ben@example.com reject",
    ]


def test_an_expired_page_says_so_and_offers_nothing_to_press(site: Site) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    site.now += timedelta(seconds=600)
    page = site.page(ticket)
    assert read_form(page) is None
    texts = read(page).texts
    assert texts[texts.index("Status:") + 1] == "expired" and "Decisions" not in texts


def test_before_and_after_read_as_a_diff_with_every_line_shown(site: Site) -> None:
    policy = {
        "id": "narrow_policy",
        "api": "iam:PutRolePolicy",
        "target": "etl-role",
        "description": "Allow s3:PutObject on the processed bucket",
        "before": {"Statement": [{"Action": ["s3:GetObject"], "Effect": "Allow"}], "Version": "2012-10-17"},
        "after": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"]}]},
        "rollback": None,
    }
    unchanged = RAISE | {"id": "keep", "before": {"b": 1, "a": 2}, "after": {"a": 2, "b": 1}}
    reader = read(site.page(site.ask(ONE_ACTION | {"actions": [policy, unchanged]})["approver"]))
    diffs = [text for text in reader.texts if text.startswith(("{", "}", "[", "]", '"', "+", "-", " "))]
    assert diffs == [
        "{",
        '"Statement": [',
        "{",
        '"Action": [',
        '- "s3:GetObject"',
        '+ "s3:GetObject",',
        '+ "s3:PutObject"',
        "],",
        '"Effect": "Allow"',
        "}",
        "],",
        '"Version": "2012-10-17"',
        "}",
        # unchanged: the JSON as it stays, keys in order
        "{",
        '"a": 2,',
        '"b": 1',
        "}",
    ]
    assert [(css, " ".join(text.split())) for css, text in reader.marked if css in ("del", "add")] == [
        ("del", '- "s3:GetObject"'),
        ("add", '+ "s3:GetObject",'),
        ("add", '+ "s3:PutObject"'),
    ]


def test_the_diff_is_indented_as_json_is(site: Site) -> None:
    page = site.page(site.ask(ONE_ACTION)["approver"])
    pre = page[page.index("<pre>") : page.index("</pre>") + len("</pre>")]
    assert pre == (
        "<pre> {\n"
        "<span class='del'>-  &quot;ReservedConcurrentExecutions&quot;: 100</span>\n"
        "<span class='add'>+  &quot;ReservedConcurrentExecutions&quot;: 200</span>\n"
        " }</pre>"
    )


def test_every_answer_is_an_html_page_with_the_security_headers(site: Site) -> None:
    ticket = site.ask(ONE_ACTION)["approver"]
    for answer, title in [
        (site.request("GET", site.url(ticket)), "Approve lambda-throttling?"),
        (site.request("GET", site.url("A" * 22)), "Approval not found"),
        (site.post(ticket, "decision=approve"), "Decision not accepted"),
        (site.press(ticket, "approve"), "Decision recorded"),
    ]:
        headers = answer.get("multiValueHeaders") or {key: [value] for key, value in answer["headers"].items()}
        assert headers["Content-Type"] == ["text/html; charset=utf-8"]
        for name, value in approval_api.SECURITY_HEADERS.items():
            assert headers[name] == [value]
        body = str(answer["body"])
        assert body.startswith("<!doctype html>") and f"<title>{title}</title>" in body and f"<h1>{title}</h1>" in body
