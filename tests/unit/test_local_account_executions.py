"""The local account's Step Functions gap fills that execution-stuck relies on, against a stuck pipeline execution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from playbooks import scenario
from playbooks.local.account import LocalAccount

STUCK = "arn:aws:states:us-east-1:123456789012:execution:etl-workflow:0f6c4e52-7d8a-4a43-9f0e-3b1a2c5d6e7f"


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    world = scenario.load("execution-stuck", "lambda-timeout").data["world"]
    with LocalAccount() as local:
        scenario.build_world(local, world, datetime.now(UTC))
        yield local


def test_world_execution_stays_running_and_is_backdated(account: LocalAccount) -> None:
    described = account.describe(STUCK)
    assert described["status"] == "RUNNING"
    assert (datetime.now(UTC) - described["startDate"]).total_seconds() >= 95 * 60 - 5


def test_watchdog_publishes_the_long_running_count_for_the_alarm(account: LocalAccount) -> None:
    # WHEN the scheduled watchdog runs (the stuck execution has been RUNNING 95 minutes, over the 15-minute threshold)
    assert account.invoke_handler("ExecutionWatchdogFunction", {}) == {"longRunning": 1}
    # THEN the alarm's metric has the count
    alarm = account.client("cloudwatch").describe_alarms(AlarmNames=["EtlExecutionStuckAlarm"])["MetricAlarms"][0]
    points = account.client("cloudwatch").get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm["Dimensions"],
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=300,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in points] == [1.0]


def test_history_newest_first_and_paged(account: LocalAccount) -> None:
    sfn = account.client("stepfunctions")
    everything = sfn.get_execution_history(executionArn=STUCK)["events"]
    page = sfn.get_execution_history(executionArn=STUCK, reverseOrder=True, maxResults=3)
    assert [e["id"] for e in page["events"]] == [e["id"] for e in everything][::-1][:3]
    rest = sfn.get_execution_history(executionArn=STUCK, reverseOrder=True, maxResults=100, nextToken=page["nextToken"])
    assert len(page["events"]) + len(rest["events"]) == len(everything)
    assert "nextToken" not in rest


def test_stop_aborts_an_execution_waiting_for_a_task_token(account: LocalAccount) -> None:
    # GIVEN an execution blocked on a task token nobody will answer
    sfn = account.client("stepfunctions")
    # WHEN it is stopped
    sfn.stop_execution(executionArn=STUCK, error="ExecutionStuck", cause="incident 42")
    # THEN it is ABORTED at once, with the error and cause given, and its history ends with ExecutionAborted
    described = account.describe(STUCK)
    assert (described["status"], described.get("error"), described.get("cause")) == ("ABORTED", "ExecutionStuck", "incident 42")
    assert sfn.get_execution_history(executionArn=STUCK, reverseOrder=True, maxResults=1)["events"][0]["type"] == "ExecutionAborted"


def test_history_without_execution_data_carries_metadata_only(account: LocalAccount) -> None:
    sfn = account.client("stepfunctions")
    full = sfn.get_execution_history(executionArn=STUCK, reverseOrder=True, maxResults=10)["events"]
    bare = sfn.get_execution_history(executionArn=STUCK, reverseOrder=True, maxResults=10, includeExecutionData=False)["events"]
    # the data is there by default (includeExecutionData defaults to true) and gone when it is false
    assert any("input" in e.get("stateEnteredEventDetails", {}) for e in full)
    assert any("parameters" in e.get("taskScheduledEventDetails", {}) for e in full)
    assert [e["type"] for e in bare] == [e["type"] for e in full]
    for event in bare:
        details = [v for k, v in event.items() if k.endswith("EventDetails")]
        assert not any({"input", "output", "parameters"} & set(d) for d in details)
    assert [e["stateEnteredEventDetails"]["name"] for e in bare if "stateEnteredEventDetails" in e]


def test_describe_execution_metadata_only_leaves_the_input_out(account: LocalAccount) -> None:
    sfn = account.client("stepfunctions")
    full = sfn.describe_execution(executionArn=STUCK)
    bare = sfn.describe_execution(executionArn=STUCK, includedData="METADATA_ONLY")
    assert "input" in full
    assert "input" not in bare
    assert {k: bare[k] for k in ("executionArn", "name", "status", "startDate")} == {
        k: full[k] for k in ("executionArn", "name", "status", "startDate")
    }
