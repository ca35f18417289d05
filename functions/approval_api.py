"""The approval web page behind API Gateway. GET shows the plan and never decides; only POST decides, once."""

from __future__ import annotations

import difflib
import html
import json
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

import approvals
from shared import clock
from shared.aws import client, table
from shared.schemas import errors

logger = Logger()
app = APIGatewayRestResolver()

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # same-origin, not no-referrer: the link is a credential and must not leak to other sites, yet a browser posting
    # the form under no-referrer sends `Origin: null`, which the cross-origin check would have to trust.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem} .status{display:inline-block;padding:.2rem .6rem;border-radius:.3rem;background:#eef}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #ccd;padding:.4rem;text-align:left;vertical-align:top}
pre{margin:0;white-space:pre-wrap} .del{background:#fdd} .add{background:#dfd} .dry{background:#ffd;padding:.5rem}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem} textarea{width:100%}
"""


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    document = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width'><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=document, headers=SECURITY_HEADERS)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Before -> after as a unified diff of pretty JSON (policies and event patterns read as code reviews)."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines()
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    rendered = []
    for line in list(difflib.unified_diff(old, new, lineterm="", n=len(old) + len(new)))[3:]:
        css = {"-": "del", "+": "add"}.get(line[:1])
        text = html.escape(line)
        rendered.append(f"<span class='{css}'>{text}</span>" if css else text)
    return "<pre>" + "\n".join(rendered or [html.escape(line) for line in new]) + "</pre>"


def render_view(ticket_id: str, view: approvals.View, base_path: str = "") -> str:
    """The page for one ticket; while the request is pending, every control that decides is inside the one form."""
    plan = view.plan
    approval = view.approval
    status = approvals.current_status(approval, clock.now())
    parts = [
        f"<p>Playbook <b>{html.escape(approval['playbook'])}</b> &middot; execution <code>{html.escape(approval['execution'].rsplit(':', 1)[-1])}</code></p>",
        f"<p>Status: <span class='status' id='status'>{html.escape(status.lower())}</span> &middot; expires {html.escape(approval['expiresAt'])}"
        f" &middot; approvals needed: {int(approval['requiredApprovals'])} &middot; you are {html.escape(view.ticket['approver'])}</p>",
        f"<p id='summary'>{html.escape(plan.get('summary', ''))}</p>",
        "<h2>Evidence</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in plan.get("evidence", [])) + "</ul>",
    ]
    if plan.get("dryRun"):
        parts.insert(0, "<p class='dry'>Dry run: approving records the decision only; nothing will be changed.</p>")
    pending = status == approvals.PENDING
    actions = plan.get("actions", [])
    rows = []
    for action in actions:
        action_id = html.escape(action["id"])
        if not pending:
            choice = ""
        elif len(actions) > 1:
            choice = f"<input type='checkbox' name='actions' value='{action_id}' id='action-{action_id}' checked aria-label='approve {action_id}'>"
        else:  # one action: approving the plan approves it, and the POST still names it
            choice = f"<input type='hidden' name='actions' value='{action_id}'>"
        description = html.escape(action["description"])
        if pending and len(actions) > 1:  # the description ticks its box too (a bigger target at 3 a.m.)
            description = f"<label for='action-{action_id}'>{description}</label>"
        rows.append(
            f"<tr><td>{choice}</td><td>{description}<br><code>{html.escape(action['api'])}</code>"
            f" on <code>{html.escape(action['target'])}</code></td><td>{_diff(action['before'], action['after'])}</td></tr>"
        )
    table_html = "<table><tr><th></th><th>Action</th><th>Before &rarr; after</th></tr>" + "".join(rows) + "</table>"
    recommendations = (
        "<h2>Recommendations (not automated)</h2><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in plan["recommendations"]) + "</ul>"
        if plan.get("recommendations")
        else ""
    )
    audit = approval.get("audit", [])
    decisions = (
        "<h2>Decisions</h2><ul id='audit'>"
        + "".join(
            f"<li>{html.escape(str(entry['at']))}: {html.escape(str(entry['approver']))} {html.escape(str(entry['decision']))}"
            + (f" ({html.escape(', '.join(entry['actions']))})" if entry.get("actions") else "")
            + (f": &ldquo;{html.escape(str(entry['comment']))}&rdquo;" if entry.get("comment") else "")
            + "</li>"
            for entry in audit
        )
        + "</ul>"
        if audit
        else ""
    )
    body = "<h2>Proposed actions</h2>" + table_html + recommendations + decisions
    if not pending:
        return "".join(parts) + body
    hint = "<p>Untick any action you do not approve; only the ticked actions are applied.</p>" if len(actions) > 1 else ""
    # The form wraps the actions: a checkbox outside it would be shown, ticked and silently never submitted.
    return (
        "".join(parts)
        + f"<form method='post' action='{html.escape(base_path)}/approvals/{html.escape(ticket_id)}/decision'>"
        + hint
        + body
        + f"<input type='hidden' name='nonce' value='{html.escape(view.ticket['nonce'])}'>"
        + "<p><label>Comment<br><textarea name='comment' rows='3' maxlength='1000'></textarea></label></p>"
        + "<button type='submit' name='decision' value='approve' id='approve'>Approve</button>"
        + "<button type='submit' name='decision' value='reject' id='reject'>Reject</button></form>"
    )


@app.route("/approvals/<ticket_id>", method=["GET", "HEAD"])
def show(ticket_id: str) -> Response[str]:
    """The page: reading it never decides (mail scanners open links before people do)."""
    view = approvals.load(table(os.environ["APPROVALS_TABLE"]), ticket_id)
    if view is None:
        return _page("Approval not found", "<p>No such approval request.</p>", 404)
    logger.info("approval viewed", extra={"playbook": view.approval["playbook"], "approver": view.ticket["approver"]})
    _, base_path = _site(app.current_event)
    return _page(f"Approve {view.approval['playbook']}?", render_view(ticket_id, view, base_path))


class MalformedForm(ValueError):
    """The POST is not what the approval form submits (a repeated single-valued field, bad encoding, not an object)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise MalformedForm("repeated field")
    return dict(pairs)


def _decision_body(raw: str | None, content_type: str) -> dict[str, Any]:
    """The submitted fields; only `actions` may repeat (one per ticked checkbox): `decision=approve&decision=reject`
    is two answers, not the first one."""
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        if not isinstance(data, dict):
            raise MalformedForm("not an object")
        return data
    form = parse_qs(raw, keep_blank_values=True, max_num_fields=60)
    if any(len(values) > 1 for key, values in form.items() if key != "actions"):
        raise MalformedForm("repeated field")
    body: dict[str, Any] = {key: values[0] for key, values in form.items() if key != "actions"}
    if "actions" in form:
        body["actions"] = form["actions"]
    return body


def _site(event: Any) -> tuple[str, str]:
    """The page's own origin and the path its routes live under (the stage on an execute-api domain), read from the
    request: a function behind its API cannot know the API's id at deploy time."""
    domain = event.request_context.domain_name or event.headers.get("host", "") or "localhost"
    local = domain.startswith(("127.", "localhost"))
    stage = event.request_context.stage
    prefix = f"/{stage}" if stage and not local and ".execute-api." in domain else ""
    return f"{'http' if local else 'https'}://{domain}", prefix


def _own_url(event: Any, ticket_id: str) -> str:
    origin, prefix = _site(event)
    return f"{origin}{prefix}/approvals/{ticket_id}"


def _foreign_origin(event: Any) -> str | None:
    """The other site a POST came from, if the browser says so (`Origin`, else `Referer`); None when same-origin or
    unsaid (non-browser clients send neither; the nonce still binds the POST to a page that was served)."""
    own, _ = _site(event)
    origin = event.headers.get("origin")
    if origin is None and event.headers.get("referer"):
        parts = urlsplit(event.headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None or origin.lower() == own.lower():
        return None
    return origin


TITLES = {200: "Decision recorded", 202: "Approval recorded", 404: "Approval not found", 409: "Already decided", 410: "Approval expired"}


@app.post("/approvals/<ticket_id>/decision")
def decide(ticket_id: str) -> Response[str]:
    event = app.current_event
    foreign = _foreign_origin(event)
    if foreign is not None:
        logger.warning("cross-origin decision refused", extra={"origin": foreign[:200]})
        return _page("Decision not accepted", "<p id='result'>This form was not sent from the approval page; nothing was changed.</p>", 403)
    try:
        body = _decision_body(event.decoded_body, event.headers.get("content-type", "") or "")
    except (ValueError, UnicodeDecodeError):
        body = {}
    if errors("decision.json", body):
        return _page("Decision not accepted", "<p id='result'>The form was incomplete or malformed; nothing was changed.</p>", 400)
    outcome = approvals.decide(
        table(os.environ["APPROVALS_TABLE"]),
        client("stepfunctions"),
        ticket_id,
        decision=body["decision"],
        nonce=body["nonce"],
        actions=body.get("actions"),
        comment=body.get("comment", ""),
        source_ip=event.request_context.identity.source_ip or "",
        user_agent=event.headers.get("user-agent", "") or "",
        record_url=_own_url(event, ticket_id),
        now=clock.now(),
    )
    title = TITLES.get(outcome.status, "Decision not recorded" if outcome.status >= 500 else "Decision not accepted")
    return _page(title, f"<p id='result'>{html.escape(outcome.message)}</p>", outcome.status)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
