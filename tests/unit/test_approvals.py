"""The decision path: single use, expiry, nonce, never a second SendTaskSuccess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

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


class FakeSfn:
    def __init__(self) -> None:
        self.successes: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> None:
        self.successes.append(kwargs)

    def send_task_failure(self, **kwargs: Any) -> None:
        self.failures.append(kwargs)


@pytest.fixture
def table() -> Any:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName="approvals",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def request(table: Any, approvers: list[str] | None = None, required: int = 1) -> dict[str, str]:
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="approvals")["TopicArn"]
    approvals.request_approval(
        table,
        sns,
        task_token="TOKEN-SECRET",
        execution="arn:aws:states:us-east-1:123456789012:execution:sm:e1",
        playbook="lambda-throttling",
        plan=PLAN,
        timeout_seconds=600,
        approvers=approvers or [],
        required_approvals=required,
        base_url="https://x/prod",
        topic_arn=topic,
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
