"""The local account's Step Functions rules that event-loop must hold under: every API's published token bucket, the
documented ListExecutions order and its eventual consistency, and a Lambda timeout on the account's clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import event_loop
import pytest
from botocore.exceptions import ClientError

from playbooks.local.account import LocalAccount
from playbooks.local.aws import sfn as aws_sfn
from playbooks.local.aws.integrations import optimized_error, sdk_error
from playbooks.local.aws.throttling import TokenBucket
from playbooks.local.recorder import PRINCIPAL
from playbooks.scenario import put_workflows

WORKFLOW = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow"
# A function of the stack allowed to list and describe the pipeline's executions.
STACK_PRINCIPAL = "EventLoopVerifyFunction"


class FrozenClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


@pytest.fixture
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        put_workflows(local, [{"name": "etl-workflow", "running": [{"count": 5, "bucket": "b", "keys": ["k"]}]}], datetime.now(UTC))
        yield local


@pytest.fixture
def as_the_stack() -> Iterator[None]:
    token = PRINCIPAL.set(STACK_PRINCIPAL)
    yield
    PRINCIPAL.reset(token)


def _code(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def test_the_published_us_east_1_buckets_are_the_accounts() -> None:
    # the developer guide's "Quotas related to API action throttling", US East (N. Virginia)
    assert aws_sfn.SFN_QUOTAS["states:DescribeExecution"] == (300, 15)
    assert aws_sfn.SFN_QUOTAS["states:ListExecutions"] == (200, 5)
    assert aws_sfn.SFN_QUOTAS["states:StartExecution"] == (1300, 300)
    assert aws_sfn.SFN_QUOTAS["states:GetExecutionHistory"] == (400, 20)
    assert aws_sfn.SFN_QUOTAS["states:DescribeStateMachineForExecution"] == (200, 1)
    assert len(aws_sfn.SFN_QUOTAS) == 36
    # every one of them is answered behind its bucket
    assert set(aws_sfn.SFN_QUOTAS) <= set(aws_sfn.HANDLERS)


def test_describe_execution_spends_its_bucket_then_throttles_the_stack_not_the_simulator(account: LocalAccount, as_the_stack: None) -> None:
    # GIVEN DescribeExecution's bucket on a clock that only moves by hand
    frozen = FrozenClock()
    aws_sfn.BUCKETS["states:DescribeExecution"] = TokenBucket(300, 15, frozen.now)
    sfn = account.client("stepfunctions")
    arn = sfn.list_executions(stateMachineArn=WORKFLOW)["executions"][0]["executionArn"]
    # WHEN a function of the stack describes 310 times at once
    codes = [_code(lambda: sfn.describe_execution(executionArn=arn)) for _ in range(310)]
    # THEN 300 pass and the rest get AWS's ThrottlingException (the SDK's own retries gave up: no time passed)
    assert (codes.count("ok"), codes.count("ThrottlingException")) == (300, 10)
    # AND one second refills 15 calls
    frozen.t += 1.0
    codes = [_code(lambda: sfn.describe_execution(executionArn=arn)) for _ in range(20)]
    assert (codes.count("ok"), codes.count("ThrottlingException")) == (15, 5)
    # AND the simulator's own polling is not counted
    token = PRINCIPAL.set("operator")
    try:
        assert _code(lambda: sfn.describe_execution(executionArn=arn)) == "ok"
    finally:
        PRINCIPAL.reset(token)


def test_throttled_tasks_fail_with_the_integrations_error_names() -> None:
    throttled = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    assert sdk_error("sfn", "stepfunctions", throttled)[0] == "Sfn.SfnException"
    assert optimized_error("stepfunctions", throttled)[0] == "StepFunctions.AWSStepFunctionsException"


def test_list_executions_puts_running_by_start_and_closed_by_stop_most_recent_first(account: LocalAccount, as_the_stack: None) -> None:
    # GIVEN one execution that started an hour ago and has just ended, and two RUNNING ones started after it
    now = datetime.now(UTC)
    inputs = json.dumps({})
    aws_sfn.add_dormant_executions(
        WORKFLOW,
        [
            ("old", inputs, now - timedelta(hours=1)),
            ("middle", inputs, now - timedelta(minutes=2)),
            ("new", inputs, now - timedelta(minutes=1)),
        ],
    )
    aws_sfn.close_dormant_execution(f"{WORKFLOW.replace(':stateMachine:', ':execution:')}:old", "SUCCEEDED", now)
    # WHEN the stack lists them two at a time
    sfn = account.client("stepfunctions")
    first = sfn.list_executions(stateMachineArn=WORKFLOW, maxResults=2)
    second = sfn.list_executions(stateMachineArn=WORKFLOW, maxResults=2, nextToken=first["nextToken"])
    # THEN the closed one comes first (by its stop date), then the RUNNING ones by start date, across pages
    assert [e["name"] for e in first["executions"]] == ["old", "new"]
    assert second["executions"][0]["name"] == "middle"


def test_a_just_started_execution_is_listed_only_after_a_while(account: LocalAccount, as_the_stack: None) -> None:
    # GIVEN an execution that starts now
    aws_sfn.add_dormant_executions(WORKFLOW, [("fresh", json.dumps({}), datetime.now(UTC))])
    sfn = account.client("stepfunctions")

    def names() -> set[str]:
        return {e["name"] for e in sfn.list_executions(stateMachineArn=WORKFLOW)["executions"]}

    # THEN the stack's listing does not show it yet, the simulator's does
    assert "fresh" not in names()
    token = PRINCIPAL.set("operator")
    try:
        assert "fresh" in names()
    finally:
        PRINCIPAL.reset(token)
    # AND once the account's clock has moved on, it is listed
    account.clock.advance(aws_sfn.LIST_CONSISTENCY_S)
    assert "fresh" in names()


@pytest.mark.parametrize(("spent", "timed_out"), [(119.0, False), (121.0, True)])
def test_a_function_that_spends_more_than_its_timeout_on_the_clock_times_out(
    account: LocalAccount, monkeypatch: pytest.MonkeyPatch, spent: float, timed_out: bool
) -> None:
    # GIVEN the verify function (Timeout 120 s) whose work spends `spent` simulated seconds (pacing, SDK backoff)
    def slow_verify(*_: Any, **__: Any) -> dict[str, Any]:
        event_loop.clock.sleep(spent)
        return {"peakPerMinute": 0, "startedSince": 0, "sampled": 0, "startedByProcessedObjects": 0}

    monkeypatch.setattr(event_loop, "verify", slow_verify)
    name = account.resources["EventLoopVerifyFunction"]
    event = {"since": "2024-06-01T00:00:00Z", "config": {"executionRateThreshold": 200, "verifySampleSize": 10}}
    # WHEN it is invoked
    payload, errored = account.dispatch(name, json.dumps(event))
    # THEN past its timeout Lambda answers Sandbox.Timedout instead of the result
    assert errored is timed_out
    if timed_out:
        assert json.loads(payload)["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 120.00 seconds" in json.loads(payload)["errorMessage"]
