"""The local account answers as strictly as AWS where the playbooks rely on it, and the playbooks cope.

Each test names the AWS documentation it follows; each would pass on a lenient account only by luck.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

import lambda_throttling
from playbooks.local.account import LocalAccount
from playbooks.local.recorder import PRINCIPAL


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        yield local


def a_minute(minutes_ago: int) -> datetime:
    """The start of a whole minute `minutes_ago` minutes back: datapoints placed in it fall in one CloudWatch bin."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return moment.replace(second=0, microsecond=0)


def put_throttles(account: LocalAccount, function: str, at: datetime, value: float) -> None:
    account.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Throttles", "Dimensions": [{"Name": "FunctionName", "Value": function}], "Timestamp": at, "Value": value}
        ],
    )


# CloudWatch API reference, GetMetricStatistics: "Start time less than 15 days ago - Round down to the nearest whole
# minute. For example, 12:32:34 is rounded down to 12:32:00."
def test_get_metric_statistics_rounds_a_recent_start_down_to_the_minute(account: LocalAccount) -> None:
    minute = a_minute(10)
    put_throttles(account, "rounding-fn", minute + timedelta(seconds=20), 7)
    # WHEN the statistics are asked from 25 s into that minute
    points = account.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Throttles",
        Dimensions=[{"Name": "FunctionName", "Value": "rounding-fn"}],
        StartTime=minute + timedelta(seconds=25),
        EndTime=minute + timedelta(minutes=5),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    # THEN the datapoint from 5 s before the start is in the first bin, which starts on the whole minute
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(minute, 7.0)]


def test_get_metric_statistics_refuses_a_period_aws_does_not_take(account: LocalAccount) -> None:
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        account.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Throttles",
            StartTime=a_minute(10),
            EndTime=a_minute(5),
            Period=45,
            Statistics=["Sum"],
        )


# Defect 3: verification asked from the moment of the change; AWS's rounding put that minute's earlier throttles in
# the first bin, so a working fix came out `escalated`.
def test_throttling_verification_counts_nothing_from_before_the_change(account: LocalAccount) -> None:
    minute = a_minute(15)
    put_throttles(account, "verified-fn", minute + timedelta(seconds=20), 12)  # throttled until the change...
    change = minute + timedelta(seconds=25)  # ...applied 5 s later, in the same minute
    # WHEN the fix is verified ten minutes on, no throttle since
    result = lambda_throttling.verify(account.client("cloudwatch"), "verified-fn", change, change + timedelta(minutes=10))
    # THEN throttling has stopped
    assert (result["throttles"], result["stopped"]) == (0, True)


def test_throttling_verification_right_after_the_change_cannot_conclude(account: LocalAccount) -> None:
    # verifyWaitSeconds 0: no whole minute of metrics after the change exists yet (and Lambda's arrive late)
    change = a_minute(20) + timedelta(seconds=25)
    result = lambda_throttling.verify(account.client("cloudwatch"), "verified-fn", change, change + timedelta(seconds=5))
    # THEN it does not call the fix working
    assert result["stopped"] is False
    assert result["conclusive"] is False


@pytest.fixture
def small_pages(account: LocalAccount) -> Iterator[LocalAccount]:
    """The account with its small-pages setting on (as `playbooks assure`'s pagination pass runs every scenario), the
    calls made as execution-stuck's diagnosis function (small pages are for the stack's functions' calls)."""
    account.settings.small_pages = True
    token = PRINCIPAL.set("StuckExecutionDiagnosisFunction")
    try:
        yield account
    finally:
        PRINCIPAL.reset(token)
        account.settings.small_pages = False


def put_log_lines(account: LocalAccount, group: str, lines: list[str], at: datetime) -> None:
    """Write the lines as the operator building the world (a stack role may not create log groups)."""
    token = PRINCIPAL.set("operator")
    try:
        _put_log_lines(account, group, lines, at)
    finally:
        PRINCIPAL.reset(token)


def _put_log_lines(account: LocalAccount, group: str, lines: list[str], at: datetime) -> None:
    logs = account.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = [{"timestamp": int((at + timedelta(seconds=n)).timestamp() * 1000), "message": line} for n, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


def test_small_pages_start_empty_and_hold_one_item_each(small_pages: LocalAccount) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    put_log_lines(small_pages, "/aws/lambda/ingest-handler", ["one", "two"], at)
    logs = small_pages.client("logs")
    pages = []
    request: dict[str, str] = {"logGroupName": "/aws/lambda/ingest-handler"}
    while True:
        page = logs.filter_log_events(**request)
        pages.append([event["message"] for event in page["events"]])
        if "nextToken" not in page:
            break
        request["nextToken"] = page["nextToken"]
    # THEN an empty page with a token first, then at most one line per page
    assert pages[0] == [] and len(pages) > 2
    assert all(len(page) <= 1 for page in pages)
    assert [line for page in pages for line in page] == ["one", "two"]


# Defect 4: execution-stuck stopped reading at the first empty page, missed the error lines and advised for `unknown`.
def test_execution_stuck_reads_past_an_empty_page(small_pages: LocalAccount) -> None:
    import execution_stuck

    at = datetime.now(UTC) - timedelta(minutes=5)
    put_log_lines(small_pages, "/aws/lambda/transform-handler", ["START RequestId: 1", "Task timed out after 900.00 seconds"], at)
    lines = execution_stuck.error_lines(small_pages.client("logs"), "transform-handler", at - timedelta(minutes=1), datetime.now(UTC))
    assert lines == ["Task timed out after 900.00 seconds"]


def test_a_dynamodb_page_token_is_a_key_not_a_string(account: LocalAccount) -> None:
    # GIVEN the reminder sweep's index query, made by its function with small pages on: its first page is empty
    from playbooks.local.aws import pagination

    account.settings.small_pages = True
    token = PRINCIPAL.set("ApprovalReminderFunction")
    try:
        query = {"TableName": account.resources["ApprovalsTable"], "IndexName": "ReminderIndex"}
        query["KeyConditionExpression"] = "#d = :d"
        page = account.client("dynamodb").query(
            **query, ExpressionAttributeNames={"#d": "reminder"}, ExpressionAttributeValues={":d": {"S": "x"}}
        )
    finally:
        PRINCIPAL.reset(token)
        account.settings.small_pages = False
    # THEN its LastEvaluatedKey is a map of attribute values, as DynamoDB's always is, and reads back as ours
    assert (page["Items"], page["Count"], page["ScannedCount"]) == ([], 0, 0)
    assert page["LastEvaluatedKey"] == {pagination.KEY_PAGE_ATTRIBUTE: {"S": "local-page-0"}}


def test_a_table_s_condition_query_walks_small_pages(account: LocalAccount) -> None:
    # GIVEN three change records of one resource, and the circuit breaker's query made through a boto3 Table (its key
    # condition an expression object, not a string) by its function with small pages on
    import safety_controls

    from shared.clock import iso as clock_iso

    table = boto3.resource("dynamodb", region_name=account.region).Table(account.resources["ChangesTable"])
    at = datetime.now(UTC) - timedelta(minutes=5)
    token = PRINCIPAL.set("operator")
    try:
        for n in range(3):
            table.put_item(Item={"execution": f"run-{n}", "resource": "lambda-throttling#f", "at": clock_iso(at + timedelta(seconds=n))})
    finally:
        PRINCIPAL.reset(token)
    account.settings.small_pages = True
    token = PRINCIPAL.set("SafetyControlsFunction")
    try:
        found = safety_controls.earlier_changes(table, "lambda-throttling#f", at - timedelta(minutes=1))
    finally:
        PRINCIPAL.reset(token)
        account.settings.small_pages = False
    # THEN every record is found, page by page, as DynamoDB pages a Table's query
    assert sorted(item["execution"] for item in found) == ["run-0", "run-1", "run-2"]
