"""execution-stuck's logic without AWS: input resolution, the stuck state, the cause, the definition's gaps, names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

import execution_stuck
import execution_watchdog
import validate_input
from shared.errors import InvalidInput

WORKFLOW = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow"
STARTED = "2026-11-25T03:00:00.000Z"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_STATE_MACHINE_ARN", WORKFLOW)
    monkeypatch.setenv("STUCK_THRESHOLD_MINUTES", "20")


def test_bare_name_resolves_against_the_workflow_and_locks_the_execution() -> None:
    result = validate_input.validate("execution-stuck", {"executionArn": "abc-123"}, "arn:x", STARTED)
    arn = "arn:aws:states:us-east-1:123456789012:execution:etl-workflow:abc-123"
    assert result["target"] == {"executionName": "abc-123", "executionArn": arn, "stateMachineArn": WORKFLOW}
    assert result["lock"]["key"] == f"execution-stuck#{arn}"
    assert result["config"]["stuckThresholdMinutes"] == 20  # the deployment's parameter
    assert result["trigger"] == {"kind": "console"}


def test_execution_of_another_state_machine_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not an execution of the pipeline's workflow"):
        validate_input.validate(
            "execution-stuck", {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:other:abc"}, "arn:x", STARTED
        )


@pytest.mark.parametrize("value", ["has space", "a/b", "x" * 81, ""])
def test_malformed_execution_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="executionArn"):
        validate_input.validate("execution-stuck", {"executionArn": value}, "arn:x", STARTED)


def test_watchdog_start_names_its_trigger() -> None:
    document = {
        "executionArn": "abc",
        "startedBy": {"kind": "watchdog", "alarm": "EtlExecutionStuckAlarm", "time": STARTED, "runningMinutes": 42},
    }
    assert validate_input.validate("execution-stuck", document, "arn:x", STARTED)["trigger"]["alarm"] == "EtlExecutionStuckAlarm"


def history(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return list(events)


def test_stuck_state_is_the_newest_entered_state_and_its_scheduled_function() -> None:
    events = history(
        {"Id": 5, "Type": "TaskSubmitted", "Timestamp": "2026-11-25T01:00:03.000Z"},
        {
            "Id": 4,
            "Type": "TaskScheduled",
            "Timestamp": "2026-11-25T01:00:02.000Z",
            "TaskScheduledEventDetails": {
                "ResourceType": "lambda",
                "Resource": "invoke.waitForTaskToken",
                "Parameters": json.dumps({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:transform-handler:live"}),
            },
        },
        {"Id": 3, "Type": "TaskStateEntered", "Timestamp": "2026-11-25T01:00:01.000Z", "StateEnteredEventDetails": {"Name": "Transform"}},
        {"Id": 2, "Type": "TaskStateExited", "Timestamp": "2026-11-25T01:00:00.500Z", "StateExitedEventDetails": {"Name": "Ingest"}},
        {"Id": 1, "Type": "TaskStateEntered", "Timestamp": "2026-11-25T01:00:00.000Z", "StateEnteredEventDetails": {"Name": "Ingest"}},
    )
    state = execution_stuck.stuck_state(events)
    assert (state["name"], state["functionName"], state["enteredAt"]) == ("Transform", "transform-handler", "2026-11-25T01:00:01.000Z")


def test_without_execution_data_the_function_comes_from_the_definition() -> None:
    # GIVEN history read with includeExecutionData false: the scheduled task carries no parameters
    events = history(
        {
            "Id": 4,
            "Type": "TaskScheduled",
            "Timestamp": "2026-11-25T01:00:02.000Z",
            "TaskScheduledEventDetails": {"ResourceType": "lambda"},
        },
        {"Id": 3, "Type": "TaskStateEntered", "Timestamp": "2026-11-25T01:00:01.000Z", "StateEnteredEventDetails": {"Name": "Transform"}},
    )
    invoke = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    function = "arn:aws:lambda:us-east-1:123456789012:function:transform-handler:live"
    definition: dict[str, Any] = {
        "StartAt": "Transform",
        "States": {"Transform": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": function}}},
    }
    assert execution_stuck.stuck_state(events, definition)["functionName"] == "transform-handler"
    # AND a legacy Lambda task is its Resource; a name known only at run time, or no Lambda at all, is no function
    definition["States"]["Transform"] = {"Type": "Task", "Resource": function}
    assert execution_stuck.stuck_state(events, definition)["functionName"] == "transform-handler"
    definition["States"]["Transform"] = {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName.$": "$.fn"}}
    assert execution_stuck.stuck_state(events, definition)["functionName"] is None
    definition["States"]["Transform"] = {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem"}
    assert execution_stuck.stuck_state(events, definition)["functionName"] is None


@pytest.mark.parametrize(
    ("lines", "memory", "cause"),
    [
        (["abc Task timed out after 60.06 seconds"], 512, "lambda-timeout"),
        (["RequestId: x Error: Runtime exited with error: signal: killed Runtime.ExitError"], 512, "out-of-memory"),
        (["REPORT RequestId: x Duration: 1 ms Memory Size: 256 MB Max Memory Used: 256 MB"], 256, "out-of-memory"),
        (["[ERROR] ReadTimeoutError: Read timeout on endpoint URL: https://dynamodb.us-east-1.amazonaws.com/"], 512, "api-call-hang"),
        (["[ERROR] KeyError: 'id'"], 512, "unknown"),
        ([], None, "unknown"),
    ],
)
def test_classify(lines: list[str], memory: int | None, cause: str) -> None:
    assert execution_stuck.classify(lines, memory) == cause


def test_definition_gaps_name_the_states_without_timeouts_and_heartbeats() -> None:
    definition = {
        "StartAt": "A",
        "TimeoutSeconds": 600,
        "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 300, "Next": "B"},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "TimeoutSeconds": 900, "Next": "P"},
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True}}}
                ],
                "End": True,
            },
        },
    }
    assert execution_stuck.definition_gaps(definition) == {
        "withoutTimeout": ["C"],
        "withoutHeartbeat": ["B"],
        "workflowTimeout": 600,
    }


def test_plan_below_the_threshold_proposes_nothing() -> None:
    diagnosis = {
        "runningMinutes": 10,
        "stuckMinutes": 9,
        "state": {"name": "Transform", "enteredAt": STARTED},
        "function": "transform-handler",
        "functionSettings": None,
        "errorLines": [],
        "cause": "unknown",
        "definition": {"withoutTimeout": [], "withoutHeartbeat": [], "workflowTimeout": 600},
    }
    target = {"executionArn": f"{WORKFLOW.replace(':stateMachine:', ':execution:')}:abc", "stateMachineArn": WORKFLOW}
    execution = {"name": "abc", "status": "RUNNING", "startDate": STARTED}
    plan = execution_stuck.plan(target, execution, diagnosis, {"stuckThresholdMinutes": 15}, "arn:x:run-1", NOW)
    assert (plan["case"], plan["actions"]) == ("not-stuck", [])
    # AND above it, stop then reprocess, in that order, the reprocess named retry-<timestamp> and without an S3 object
    diagnosis["runningMinutes"] = 16
    plan = execution_stuck.plan(target, execution, diagnosis, {"stuckThresholdMinutes": 15}, "arn:x:run-1", NOW)
    assert [a["id"] for a in plan["actions"]] == ["stop_execution", "reprocess"]
    assert re.fullmatch(rf"retry-{int(NOW.timestamp())}-[0-9a-f]{{8}}", plan["actions"][1]["after"]["name"])
    assert plan["actions"][1]["after"]["object"] is None
    # AND the plan names the execution whose input the retry gets, never the input itself (up to 256 KiB)
    assert plan["actions"][1]["after"]["inputOf"] == target["executionArn"]
    assert "input" not in plan["actions"][1]["after"]


def test_reprocess_starts_the_retry_with_the_stuck_input_once() -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(name="etl-workflow", definition=definition, roleArn="arn:aws:iam::123456789012:role/r")
        payload = json.dumps({"detail": {"object": {"key": "k"}}, "padding": "r" * 200 * 1024})
        stuck = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="stuck", input=payload)["executionArn"]
        # WHEN the retry is started, and started again (a Lambda retry after a lost answer)
        first = execution_stuck.reprocess(sfn, input_of=stuck, state_machine_arn=machine["stateMachineArn"], name="retry-1")
        again = execution_stuck.reprocess(sfn, input_of=stuck, state_machine_arn=machine["stateMachineArn"], name="retry-1")
        # THEN one retry runs, with the stuck execution's input
        assert first == again
        assert sfn.describe_execution(executionArn=first["executionArn"])["input"] == payload
        assert len(sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]) == 2


def test_retry_names_differ_per_execution_within_one_second() -> None:
    assert execution_stuck.retry_name("arn:a", NOW) != execution_stuck.retry_name("arn:b", NOW)


def test_watchdog_run_name_is_stable_short_and_valid() -> None:
    arn = f"{WORKFLOW.replace(':stateMachine:', ':execution:')}:{'x' * 80}"
    event = "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    name = execution_watchdog.run_name(arn, event)
    assert name == execution_watchdog.run_name(arn, event)
    assert len(name) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    # AND another alarm event, or another execution, is another run
    assert execution_watchdog.run_name(arn, "another-event") != name
    assert execution_watchdog.run_name(arn[:-1] + "y", event) != name


class FakeSfn:
    def __init__(self, status: str, started: datetime):
        self.status, self.started = status, started

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"status": self.status, "startDate": self.started}


@pytest.mark.parametrize(("attempt", "done"), [(0, False), (3, True)])
def test_verify_gives_up_on_a_running_retry_at_the_deadline(attempt: int, done: bool) -> None:
    config = {"reprocessPollSeconds": 30, "reprocessDeadlineSeconds": 120}
    result = execution_stuck.verify(
        FakeSfn("RUNNING", NOW - timedelta(seconds=5)),
        None,
        None,
        execution_arn="arn:retry",
        obj=None,
        attempt=attempt,
        config=config,
        processed_bucket="p",
        metadata_table="t",
        key_attribute="objectKey",
        now=NOW,
    )
    assert (result["attempt"], result["done"], result["verified"]) == (attempt + 1, done, False)
