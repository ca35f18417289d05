"""The first state of every playbook: bad input is refused with every problem named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import validate_input
from shared.errors import InvalidInput

STARTED = "2026-11-25T03:00:00.000Z"
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(autouse=True)
def pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_FUNCTIONS", "ingest-handler,transform-handler")
    monkeypatch.setenv("APPROVAL_TIMEOUT_SECONDS", "900")


def test_console_input_gets_defaults_and_a_lock() -> None:
    result = validate_input.validate("lambda-throttling", {"functionName": "ingest-handler"}, "arn:x", STARTED)
    assert result["target"] == {"functionName": "ingest-handler"}
    assert result["config"]["approvalTimeoutSeconds"] == 900
    assert result["lock"] == {
        "key": "lambda-throttling#ingest-handler",
        "now": STARTED,
        "expiresAt": "2026-11-25T05:00:00.000Z",
        "ttl": str(int(datetime(2026, 11, 25, 5, tzinfo=UTC).timestamp())),
    }


def test_alarm_event_becomes_the_same_input() -> None:
    event = json.loads((EVENTS / "lambda-throttling-alarm.json").read_text())
    result = validate_input.validate("lambda-throttling", event, "arn:x", STARTED)
    assert result["target"] == {"functionName": "ingest-handler"}
    assert result["trigger"]["kind"] == "alarm"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "'functionName' is a required property"),
        ({"functionName": "ingest handler"}, "does not match"),
        ({"functionName": "billing"}, "is not one of the pipeline's functions"),
        ({"functionName": "ingest-handler", "config": {"verifyWaitSeconds": -1}}, "config.verifyWaitSeconds"),
        ({"functionName": "ingest-handler", "surprise": 1}, "Additional properties"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_input.validate("lambda-throttling", raw, "arn:x", STARTED)


def test_a_failed_execution_of_another_state_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow")
    message = 'User: arn:aws:sts::123456789012:assumed-role/lambda-execution-role/f is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::b/k"'
    other = "arn:aws:states:us-east-1:123456789012:execution:billing-workflow:run-1"
    with pytest.raises(InvalidInput, match=r"failedExecutionArn .* is not an execution of the pipeline's workflow"):
        validate_input.validate("access-denied", {"message": message, "failedExecutionArn": other}, "arn:x", STARTED)
    own = "arn:aws:states:us-east-1:123456789012:execution:etl-workflow:run-1"
    result = validate_input.validate("access-denied", {"message": message, "failedExecutionArn": own}, "arn:x", STARTED)
    assert result["target"]["failedExecutionArn"] == own
