"""The approval API in the local account: API Gateway proxy events for the real handler, a person's click, and a
localhost server that serves the same handler to a real browser (`simulate --decision browser`)."""

from __future__ import annotations

import threading
import uuid
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

from .account import LocalAccount

WEB_FUNCTION = "ApprovalWebFunction"


class _FormReader(HTMLParser):
    """Reads the approval page as a browser would: the form's hidden nonce."""

    def __init__(self) -> None:
        super().__init__()
        self.nonce: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name") == "nonce":
            self.nonce = values.get("value")


def read_nonce(page: str) -> str:
    reader = _FormReader()
    reader.feed(page)
    return reader.nonce or ""


def api_event(
    method: str,
    path: str,
    body: str | None = None,
    source_ip: str = "127.0.0.1",
    user_agent: str = "playbooks-simulator",
    host: str = "approvals.local.invalid",
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the approval API receives it."""
    ticket = path.split("/")[2] if path.count("/") >= 2 else ""
    resource = "/approvals/{id}/decision" if path.endswith("/decision") else "/approvals/{id}"
    headers = {"user-agent": user_agent, "content-type": content_type, "host": host}
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
            "domainName": host,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def click(account: LocalAccount, ticket: str, decision: str, comment: str = "", actions: list[str] | None = None) -> dict[str, Any]:
    """What an approver does: open the link (GET), then press a button (POST with the page's nonce)."""
    page = account.invoke_handler(WEB_FUNCTION, api_event("GET", f"/approvals/{ticket}"))
    fields: list[tuple[str, str]] = [("decision", decision), ("nonce", read_nonce(page.get("body", ""))), ("comment", comment)]
    fields += [("actions", action) for action in actions or []]
    return dict(account.invoke_handler(WEB_FUNCTION, api_event("POST", f"/approvals/{ticket}/decision", urlencode(fields))))


class ApprovalServer:
    """Serves the approval handler on 127.0.0.1 (an ephemeral port) until closed; each request becomes the API
    Gateway event AWS would send, so the browser sees exactly the deployed page."""

    def __init__(self, account: LocalAccount, port: int = 0):
        self.account = account
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else None
                path = urlsplit(self.path).path
                event = api_event(
                    method,
                    path,
                    body,
                    source_ip=self.client_address[0],
                    user_agent=self.headers.get("user-agent", ""),
                    host=f"127.0.0.1:{outer.port}",
                    content_type=self.headers.get("content-type", ""),
                )
                answer = outer.account.invoke_handler(WEB_FUNCTION, event)
                payload = str(answer.get("body") or "").encode()
                self.send_response(int(answer.get("statusCode", 500)))
                for key, value in (answer.get("headers") or {}).items():
                    self.send_header(key, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_HEAD(self) -> None:
                self._serve("HEAD")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, ticket: str) -> str:
        return f"http://127.0.0.1:{self.port}/approvals/{ticket}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
