"""The local approval server is the deployed page: every header the handler returns reaches the client, and whatever a
client sends (bad bytes, long lines, bursts, silence) gets an answer, never a dead thread."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest
from approval_helpers import calls, start_until_approval

from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import ApprovalServer, read_form, response_headers

DEPLOYED_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module")
def served() -> Any:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        server = ApprovalServer(account)
        try:
            yield account, execution, ticket, server
        finally:
            server.close()


def request(server: ApprovalServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    answer.data = answer.read()  # type: ignore[attr-defined]
    connection.close()
    return answer


def raw(server: ApprovalServer, data: bytes) -> bytes:
    """What the server answers to bytes no well-behaved client sends."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_the_browser_gets_every_header_the_handler_returns(served: Any) -> None:
    _, _, ticket, server = served
    for method in ("GET", "HEAD"):
        answer = request(server, method, f"/approvals/{ticket}")
        assert answer.status == 200
        headers = {key.lower(): value for key, value in answer.getheaders()}
        assert {key: headers.get(key) for key in DEPLOYED_HEADERS} == DEPLOYED_HEADERS


def test_multi_value_headers_are_merged_as_api_gateway_merges_them() -> None:
    answer = {
        "headers": {"Content-Type": "text/html", "Set-Cookie": "a=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Vary": ["Origin"]},
    }
    assert sorted(response_headers(answer)) == [
        ("Content-Type", "text/html"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Vary", "Origin"),
    ]


def test_a_link_with_a_trailing_slash_still_posts_to_the_decision(served: Any) -> None:
    _, _, ticket, server = served
    link = f"/approvals/{ticket}/"
    answer = request(server, "GET", link)
    assert answer.status == 200
    form = read_form(answer.data.decode())
    # where the browser posts: the form's action resolved against the page's own address
    assert form is not None and urljoin(link, form.action) == f"/approvals/{ticket}/decision"


@pytest.mark.parametrize(
    "body",
    [pytest.param(b"decision=approve&nonce=\xff\xfe\xfd", id="not-utf-8"), pytest.param(b"\x00" * 5000, id="nul-bytes")],
)
def test_bad_bytes_get_an_answer_and_decide_nothing(served: Any, body: bytes) -> None:
    account, execution, ticket, server = served
    answer = request(server, "POST", f"/approvals/{ticket}/decision", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 400
    assert calls("states:SendTaskSuccess") == 0 and account.describe(execution)["status"] == "RUNNING"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GET /approvals/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 414 ", id="long-request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", b" 431 ", id="long-header"),
        pytest.param(b"POST /approvals/x/decision HTTP/1.1\r\nContent-Length: many\r\n\r\n", b" 400 ", id="bad-length"),
        pytest.param(b"POST /approvals/x/decision HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b" 400 ", id="negative-length"),
        pytest.param(b"POST /approvals/x/decision HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b" 413 ", id="huge-length"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", b" 400 ", id="tls-hello"),
    ],
)
def test_malformed_http_gets_an_answer(served: Any, data: bytes, status: bytes) -> None:
    _, _, ticket, server = served
    assert status in raw(server, data).split(b"\r\n", 1)[0]
    assert request(server, "GET", f"/approvals/{ticket}").status == 200  # and the server goes on serving


def test_a_burst_of_connections_is_answered_while_one_client_stays_silent(served: Any) -> None:
    _, _, ticket, server = served
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)  # connects, never sends a byte
    statuses: list[int] = []
    lock = threading.Lock()

    def fetch() -> None:
        status = request(server, "GET", f"/approvals/{ticket}").status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=fetch) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    silent.close()
    assert statuses == [200] * 60


def test_the_form_submitted_through_the_server_decides_once(served: Any) -> None:
    _, _, ticket, server = served
    form = read_form(request(server, "GET", f"/approvals/{ticket}").data.decode())
    assert form is not None
    body = urlencode(form.submission("approve")).encode()
    origin = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{server.port}"}
    first = request(server, "POST", form.action, body, origin)
    second = request(server, "POST", form.action, body, origin)
    assert (first.status, second.status) == (200, 409)
    assert calls("states:SendTaskSuccess") == 1
