"""The approval web page behind API Gateway. GET shows the plan and never decides; only POST decides, once."""

from __future__ import annotations

import difflib
import html
import json
import os
from typing import Any
from urllib.parse import parse_qs

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
    "Referrer-Policy": "no-referrer",
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


def render_view(ticket_id: str, view: approvals.View) -> str:
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
    rows = []
    for action in plan.get("actions", []):
        checkbox = (
            f"<input type='checkbox' name='actions' value='{html.escape(action['id'])}' checked aria-label='approve {html.escape(action['id'])}'>"
            if pending and len(plan["actions"]) > 1
            else ""
        )
        rows.append(
            f"<tr><td>{checkbox}</td><td>{html.escape(action['description'])}<br><code>{html.escape(action['api'])}</code>"
            f" on <code>{html.escape(action['target'])}</code></td><td>{_diff(action['before'], action['after'])}</td></tr>"
        )
    parts.append(
        "<h2>Proposed actions</h2><table><tr><th></th><th>Action</th><th>Before &rarr; after</th></tr>" + "".join(rows) + "</table>"
    )
    if plan.get("recommendations"):
        parts.append(
            "<h2>Recommendations (not automated)</h2><ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in plan["recommendations"])
            + "</ul>"
        )
    audit = approval.get("audit", [])
    if audit:
        parts.append(
            "<h2>Decisions</h2><ul id='audit'>"
            + "".join(
                f"<li>{html.escape(str(entry['at']))}: {html.escape(str(entry['approver']))} {html.escape(str(entry['decision']))}"
                + (f" ({html.escape(', '.join(entry['actions']))})" if entry.get("actions") else "")
                + (f": &ldquo;{html.escape(str(entry['comment']))}&rdquo;" if entry.get("comment") else "")
                + "</li>"
                for entry in audit
            )
            + "</ul>"
        )
    if pending:
        parts.append(
            f"<form method='post' action='{html.escape(ticket_id)}/decision'>"
            f"<input type='hidden' name='nonce' value='{html.escape(view.ticket['nonce'])}'>"
            "<p><label>Comment<br><textarea name='comment' rows='3' maxlength='1000'></textarea></label></p>"
            "<button type='submit' name='decision' value='approve' id='approve'>Approve</button>"
            "<button type='submit' name='decision' value='reject' id='reject'>Reject</button></form>"
        )
    return "".join(parts)


@app.route("/approvals/<ticket_id>", method=["GET", "HEAD"])
def show(ticket_id: str) -> Response[str]:
    """The page: reading it never decides (mail scanners open links before people do)."""
    view = approvals.load(table(os.environ["APPROVALS_TABLE"]), ticket_id)
    if view is None:
        return _page("Approval not found", "<p>No such approval request.</p>", 404)
    logger.info("approval viewed", extra={"playbook": view.approval["playbook"], "approver": view.ticket["approver"]})
    return _page(f"Approve {view.approval['playbook']}?", render_view(ticket_id, view))


def _decision_body(raw: str | None, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}
    form = parse_qs(raw, keep_blank_values=True, max_num_fields=60)
    body: dict[str, Any] = {key: values[0] for key, values in form.items() if key != "actions"}
    if "actions" in form:
        body["actions"] = form["actions"]
    return body


def _own_url(event: Any, ticket_id: str) -> str:
    """The page's own address (from the request: a function behind its API cannot know the API's id at deploy time)."""
    domain = event.request_context.domain_name or event.headers.get("host", "") or "localhost"
    stage = event.request_context.stage
    prefix = f"/{stage}" if stage and not domain.startswith(("127.", "localhost")) else ""
    scheme = "http" if domain.startswith(("127.", "localhost")) else "https"
    return f"{scheme}://{domain}{prefix}/approvals/{ticket_id}"


@app.post("/approvals/<ticket_id>/decision")
def decide(ticket_id: str) -> Response[str]:
    event = app.current_event
    try:
        body = _decision_body(event.decoded_body, event.headers.get("content-type", "") or "")
    except (ValueError, UnicodeDecodeError):
        body = {}
    problems = errors("decision.json", body)
    if problems:
        return _page("Decision not accepted", "<p>The form was incomplete or malformed; nothing was changed.</p>", 400)
    source_ip = event.request_context.identity.source_ip or ""
    outcome = approvals.decide(
        table(os.environ["APPROVALS_TABLE"]),
        client("stepfunctions"),
        ticket_id,
        decision=body["decision"],
        nonce=body["nonce"],
        actions=body.get("actions"),
        comment=body.get("comment", ""),
        source_ip=source_ip,
        user_agent=event.headers.get("user-agent", "") or "",
        record_url=_own_url(event, ticket_id),
        now=clock.now(),
    )
    titles = {
        200: "Decision recorded",
        202: "Approval recorded",
        404: "Approval not found",
        409: "Already decided",
        410: "Approval expired",
    }
    return _page(titles.get(outcome.status, "Decision not accepted"), f"<p id='result'>{html.escape(outcome.message)}</p>", outcome.status)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
