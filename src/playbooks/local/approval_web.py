"""The approval API in the local account: API Gateway proxy events for the real handler, a person's click, and a
localhost server that serves the same handler to a real browser (`simulate --decision browser`)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from .account import LocalAccount

WEB_FUNCTION = "ApprovalWebFunction"
DEFAULT_HOST = "approvals.local.invalid"


@dataclass
class Form:
    """The approval page's form as a browser sees it: where it posts, the fields it always sends, its checkboxes
    (ticked or not), its text areas and its submit buttons."""

    action: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, value, checked)
    textareas: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value)

    def submission(self, button: str, tick: list[str] | None = None, comment: str = "") -> list[tuple[str, str]]:
        """The fields a browser submits when the approver ticks exactly `tick` (None leaves the boxes as served),
        writes `comment` and presses the button whose value is `button`: what the form has, nothing else."""
        if button not in {value for _, value in self.buttons}:
            raise ValueError(f"the form has no {button!r} button")
        offered = {value for _, value, _ in self.checkboxes}
        if tick is not None and set(tick) - offered:
            raise ValueError(f"the form offers no checkbox for {sorted(set(tick) - offered)}")
        submitted = list(self.fields)
        submitted += [(name, value) for name, value, checked in self.checkboxes if (checked if tick is None else value in tick)]
        submitted += [(name, comment if name == "comment" else text) for name, text in self.textareas.items()]
        submitted += [(name, value) for name, value in self.buttons if value == button]
        return submitted


class _FormReader(HTMLParser):
    """Reads the first form of a page with the standard library's HTML parser; controls outside it are not sent."""

    def __init__(self) -> None:
        super().__init__()
        self.form: Form | None = None
        self._inside = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and self.form is None:
            self.form, self._inside = Form(action=values.get("action", "")), True
            return
        if not self._inside or self.form is None or "disabled" in values:
            return
        name, kind = values.get("name", ""), values.get("type", "text").lower()
        if tag == "input" and name:
            if kind == "checkbox":
                self.form.checkboxes.append((name, values.get("value", "on"), "checked" in values))
            elif kind == "submit":
                self.form.buttons.append((name, values.get("value", "")))
            else:
                self.form.fields.append((name, values.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = name
            self.form.textareas[name] = ""
        elif tag == "button" and values.get("type", "submit").lower() == "submit":
            self.form.buttons.append((name, values.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.form is not None:
            self.form.textareas[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "textarea":
            self._textarea = None


def read_form(page: str) -> Form | None:
    """The page's form, or None when it has none (a decided or expired request is read-only)."""
    reader = _FormReader()
    reader.feed(page)
    reader.close()
    return reader.form


def read_nonce(page: str) -> str:
    form = read_form(page)
    return next((value for name, value in form.fields if name == "nonce"), "") if form else ""


def api_event(
    method: str,
    path: str,
    body: str | None = None,
    source_ip: str = "127.0.0.1",
    user_agent: str = "playbooks-simulator",
    host: str = DEFAULT_HOST,
    content_type: str = "application/x-www-form-urlencoded",
    origin: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the approval API receives it. `headers` (as sent, repeats included)
    replace the simulator's defaults; `origin` adds the Origin header a browser sends with a form POST."""
    ticket = path.split("/")[2] if path.count("/") >= 2 else ""
    resource = "/approvals/{id}/decision" if path.endswith("/decision") else "/approvals/{id}"
    if headers is None:
        headers = [("user-agent", user_agent), ("content-type", content_type), ("host", host)]
        headers += [("origin", origin)] if origin is not None else []
    multi: dict[str, list[str]] = {}
    for key, value in headers:
        multi.setdefault(key, []).append(value)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        # API Gateway keeps the last value of a repeated header in `headers` and all of them in `multiValueHeaders`.
        "headers": {key: values[-1] for key, values in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": ticket},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "domainName": host,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


def click(account: LocalAccount, ticket: str, decision: str, comment: str = "", actions: list[str] | None = None) -> dict[str, Any]:
    """What an approver does: open the link (GET), tick exactly `actions` (None: leave every box as served), press a
    button (POST of what the served form submits, to the form's own action). A page without a form is answered as
    it was served (a decided or expired request)."""
    page = account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))
    form = read_form(str(page.get("body", "")))
    if form is None:
        return dict(page)
    fields = form.submission(decision, tick=actions, comment=comment)
    action = urljoin(f"https://{DEFAULT_HOST}/approvals/{ticket}", form.action)
    path = urlsplit(action).path
    return dict(account.invoke_handler(WEB_FUNCTION, api_event("POST", path, urlencode(fields), origin=f"https://{DEFAULT_HOST}")))


MAX_BODY_BYTES = 1 << 20
REQUEST_TIMEOUT_S = 10.0


def response_headers(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """Every header of a proxy integration's answer, as API Gateway merges `multiValueHeaders` and `headers`
    (a pair given in both appears once)."""
    merged = [(key, str(value)) for key, values in (answer.get("multiValueHeaders") or {}).items() for value in values]
    for key, value in (answer.get("headers") or {}).items():
        if (key.lower(), str(value)) not in {(k.lower(), v) for k, v in merged}:
            merged.append((key, str(value)))
    return merged


class ApprovalServer:
    """Serves the approval handler on 127.0.0.1 (an ephemeral port) until closed; each request becomes the API
    Gateway event AWS would send and each answer goes back as API Gateway returns it (every header, single or
    multi-value), so the browser sees exactly the deployed page. Whatever a client sends, it gets an answer."""

    def __init__(self, account: LocalAccount, port: int = 0):
        self.account = account
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S  # a client that stops sending loses its connection, not a thread forever

            def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes, method: str) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def _error(self, status: int, message: str, method: str) -> None:
                body = json.dumps({"message": message}).encode()
                self.close_connection = True
                self._reply(status, [("Content-Type", "application/json")], body, method)

            def _serve(self, method: str) -> None:
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    return self._error(400, "Bad Content-Length", method)
                if length < 0:
                    return self._error(400, "Bad Content-Length", method)
                if length > MAX_BODY_BYTES:
                    return self._error(413, "Request Entity Too Large", method)
                try:
                    raw = self.rfile.read(length) if length else b""
                except TimeoutError:
                    return self._error(408, "Request Timeout", method)
                try:
                    body, base64_body = (raw.decode() if raw else None), False
                except UnicodeDecodeError:
                    body, base64_body = base64.b64encode(raw).decode(), True  # the handler sees the bytes as sent
                headers = [(key.lower(), value) for key, value in self.headers.items()]
                event = api_event(
                    method,
                    urlsplit(self.path).path,
                    body,
                    source_ip=self.client_address[0],
                    user_agent=self.headers.get("user-agent", ""),
                    host=f"127.0.0.1:{outer.port}",
                    headers=headers,
                    base64_body=base64_body,
                )
                try:
                    answer = outer.account.invoke_handler(WEB_FUNCTION, event)
                except Exception:  # noqa: BLE001 - a failed function is API Gateway's 502, never a dead connection
                    return self._error(502, "Internal server error", method)
                payload = answer.get("body") or ""
                data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
                self._reply(int(answer.get("statusCode", 502)), response_headers(answer), data, method)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_HEAD(self) -> None:
                self._serve("HEAD")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a burst of connections waits for a thread instead of being refused
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that went away mid-answer is its own business; the server goes on

        self._server = Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, ticket: str) -> str:
        return f"http://127.0.0.1:{self.port}/approvals/{ticket}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
