"""event-loop logic without a state machine: the plan, the pacer, the stopper, and the local account's quota model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import event_loop
import pytest
from botocore.exceptions import ClientError

import validate_input
from playbooks.local.account import LocalAccount
from playbooks.local.aws import sfn as aws_sfn
from playbooks.local.aws.throttling import TokenBucket
from playbooks.local.recorder import PRINCIPAL
from playbooks.scenario import put_workflows
from shared import clock
from shared.errors import InvalidInput

PIPELINE = {
    "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow",
    "rawBucket": "raw-data-bucket",
    "processedBucket": "processed-data-bucket",
    "alarmName": "etl-execution-rate-spike",
}
CONFIG = dict(validate_input.CONFIG_DEFAULTS)
LOOSE = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["raw-data-bucket", "processed-data-bucket"]}},
}


def findings(
    *, pattern: dict[str, Any], state: str = "ENABLED", repeating: bool = True, admits: bool = True, alarm: bool = True
) -> dict[str, Any]:
    return {
        "rule": {"state": state, "eventPattern": json.dumps(pattern)},
        "alarm": {"alarms": [{"AlarmName": "etl-execution-rate-spike"}] if alarm else []},
        "measured": {
            "startedPerMinute": [{"minute": "m", "started": 900}],
            "peakPerMinute": 900,
            "running": 2000,
            "sampled": 100,
            "fromProcessedBucket": 100 if admits else 0,
            "repeatingKeys": [{"object": "processed-data-bucket/incoming/a.csv", "executions": 50}] if repeating else [],
            "admitsProcessedBucket": ["probe.csv"] if admits else [],
            "admitsRawOutsideIncoming": [],
            "eventBridgeNotifications": {"raw-data-bucket": True, "processed-data-bucket": True},
        },
    }


TARGET = {"stateMachineName": "etl-workflow", "ruleName": "etl-s3-events"}


def ids(actions: list[dict[str, Any]]) -> list[str]:
    return [action["id"] for action in actions]


def test_loop_plan_has_two_steps_with_the_runbooks_fixed_pattern() -> None:
    plan = event_loop.plan(TARGET, findings(pattern=LOOSE, alarm=False), CONFIG, PIPELINE)
    assert plan["case"] == "event-loop"
    assert ids(plan["containment"]["actions"]) == ["disable_rule", "stop_running_executions"]
    assert ids(plan["fix"]["actions"]) == ["restrict_rule_pattern", "enable_rule", "create_execution_rate_alarm"]
    assert json.loads(plan["rule"]["fixedPattern"]) == event_loop.fixed_pattern("raw-data-bucket")
    assert any('-        "processed-data-bucket"' in line for line in plan["fix"]["evidence"])


@pytest.mark.parametrize("state", ["ENABLED", "DISABLED"])
def test_the_pattern_rollback_restores_the_rules_state_before_the_run(state: str) -> None:
    # GIVEN a rule that was ENABLED or DISABLED before the run (PutRule without State would enable it)
    plan = event_loop.plan(TARGET, findings(pattern=LOOSE, state=state), CONFIG, PIPELINE)
    restrict = next(action for action in plan["actions"] if action["id"] == "restrict_rule_pattern")
    # THEN its recorded rollback puts back the old pattern with that state
    assert restrict["rollback"]["parameters"] == {"Name": "etl-s3-events", "EventPattern": json.dumps(LOOSE), "State": state}


def test_distinct_keys_and_a_correct_pattern_are_a_traffic_spike() -> None:
    plan = event_loop.plan(
        TARGET, findings(pattern=event_loop.fixed_pattern("raw-data-bucket"), repeating=False, admits=False), CONFIG, PIPELINE
    )
    assert (plan["case"], plan["actions"]) == ("traffic-spike", [])


def test_a_rerun_plans_only_what_still_differs() -> None:
    # GIVEN the rule was already disabled and fixed by a first run, and the alarm exists
    fixed = event_loop.fixed_pattern("raw-data-bucket")
    plan = event_loop.plan(TARGET, findings(pattern=fixed, state="DISABLED", admits=False), CONFIG, PIPELINE)
    # THEN nothing is disabled or rewritten again: only what is still running is stopped, and the rule re-enabled
    assert ids(plan["containment"]["actions"]) == ["stop_running_executions"]
    assert ids(plan["fix"]["actions"]) == ["enable_rule"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "monotonic", fake.monotonic)
    monkeypatch.setattr(clock, "sleep", fake.sleep)
    return fake


def test_pacer_spends_the_burst_then_holds_the_refill_rate(fake_clock: FakeClock) -> None:
    pacer = event_loop.Pacer(rate=200, burst=1000)
    for _ in range(3000):
        pacer.acquire()
    assert fake_clock.t == pytest.approx(10.0, rel=1e-6)  # 1,000 at once, 2,000 at 200/s


def test_pacer_slows_down_on_throttling_once_per_second(fake_clock: FakeClock) -> None:
    pacer = event_loop.Pacer(rate=200, burst=1000)
    for _ in range(16):  # every in-flight worker reports the same empty bucket
        pacer.throttled()
    assert pacer.rate == pytest.approx(140.0)
    assert pacer.tokens <= 0


START = datetime(2024, 6, 1, tzinfo=UTC)


class FakeSfn:
    """ListExecutions over a fixed set; StopExecution throttles the first calls; some executions end on their own just
    before their stop, which StopExecution answers as if it had stopped them (as AWS does)."""

    def __init__(self, running: int, throttle_first: int = 0, finishing: frozenset[int] = frozenset()):
        self.started = {f"arn:{i}": START + timedelta(seconds=i) for i in range(running)}
        self.running = set(self.started)
        self.finishing = {f"arn:{i}" for i in finishing}
        self.succeeded: dict[str, datetime] = {}
        self.throttle_left = throttle_first
        self.calls = 0

    def list_executions(self, **params: Any) -> dict[str, Any]:
        if params.get("statusFilter") == "RUNNING":
            items = [{"executionArn": arn, "status": "RUNNING", "startDate": self.started[arn]} for arn in sorted(self.running)]
        else:
            closed = {"SUCCEEDED": self.succeeded}.get(params.get("statusFilter", ""), {})
            items = [
                {"executionArn": arn, "status": params["statusFilter"], "startDate": self.started[arn], "stopDate": stop}
                for arn, stop in sorted(closed.items(), key=lambda pair: pair[1], reverse=True)
            ]
        start = int(params.get("nextToken", 0))
        answer: dict[str, Any] = {"executions": items[start : start + params["maxResults"]]}
        if start + params["maxResults"] < len(items):
            answer["nextToken"] = str(start + params["maxResults"])
        return answer

    def stop_execution(self, executionArn: str, cause: str) -> dict[str, Any]:
        self.calls += 1
        if self.throttle_left > 0:
            self.throttle_left -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StopExecution")
        if executionArn in self.finishing and executionArn in self.running:
            self.succeeded[executionArn] = START + timedelta(hours=1)
        self.running.discard(executionArn)
        return {"stopDate": START + timedelta(hours=1)}


def stop(sfn: FakeSfn) -> dict[str, Any]:
    return event_loop.stop_running(sfn, "arn:sm", concurrency=8, rate=200, burst=1000, seconds_left=lambda: 900.0)


def test_stopper_retries_throttled_calls_tolerates_finished_executions_and_a_rerun_stops_nothing(fake_clock: FakeClock) -> None:
    # GIVEN 40 throttled calls in a row (more than one execution's attempts) and two executions finishing meanwhile,
    # whose stop calls succeed all the same
    sfn = FakeSfn(2500, throttle_first=40, finishing=frozenset({3, 7}))
    first = stop(sfn)
    # THEN the statuses, read, tell the two that ended on their own from the ones it stopped
    assert first["throttled"] == 40 and first["finishedMeanwhile"] == 2
    assert first["stopped"] + first["finishedMeanwhile"] + first["left"] == 2500
    assert first["left"] == len(sfn.running)
    # WHEN the next round runs THEN it stops only what is still running
    second = stop(sfn)
    assert (second["listed"], second["stopped"], sfn.running) == (first["left"], first["left"], set())
    # AND a rerun after that lists nothing and stops nothing
    calls = sfn.calls
    third = stop(sfn)
    assert (third["listed"], third["stopped"], sfn.calls) == (0, 0, calls)
    totals = event_loop.next_round(event_loop.next_round(event_loop.next_round({}, first), second), third)
    assert (totals["round"], totals["stopped"], totals["done"]) == (3, 2498, True)


def test_stopper_leaves_work_for_the_next_round_when_time_runs_out(fake_clock: FakeClock) -> None:
    sfn = FakeSfn(50)
    result = event_loop.stop_running(sfn, "arn:sm", concurrency=4, rate=200, burst=1000, seconds_left=lambda: 10.0)
    assert (result["stopped"], result["left"], len(sfn.running)) == (0, 50, 50)
    assert event_loop.next_round({}, result)["done"] is False


def test_alarm_event_names_the_workflow_and_other_resources_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_STATE_MACHINE", "etl-workflow")
    monkeypatch.setenv("ETL_EVENT_RULE", "etl-s3-events")
    event = {
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": "etl-execution-rate-spike",
            "configuration": {"metrics": [{"metricStat": {"metric": {"dimensions": {"StateMachineArn": PIPELINE["stateMachineArn"]}}}}]},
        },
    }
    result = validate_input.validate("event-loop", event, "exec", "2024-06-01T10:00:00Z")
    assert result["target"] == {"stateMachineName": "etl-workflow", "ruleName": "etl-s3-events"}
    assert result["lock"]["key"] == "event-loop#etl-workflow"
    with pytest.raises(InvalidInput, match="not the pipeline's rule"):
        validate_input.validate("event-loop", {"stateMachineName": "etl-workflow", "ruleName": "other"}, "exec", "2024-06-01T10:00:00Z")
    with pytest.raises(InvalidInput, match="not the pipeline's workflow"):
        validate_input.validate("event-loop", {"stateMachineName": "billing"}, "exec", "2024-06-01T10:00:00Z")


def test_local_account_throttles_stop_execution_like_us_east_1_and_pages_like_aws() -> None:
    with LocalAccount() as account:
        put_workflows(account, [{"name": "etl-workflow", "running": [{"count": 1300, "bucket": "b", "keys": ["k"]}]}], datetime.now(UTC))
        sfn = account.client("stepfunctions")
        arn = PIPELINE["stateMachineArn"]
        # pages newest first, at most 1,000, and the token survives executions leaving the filter between pages
        first = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=1000)
        assert len(first["executions"]) == 1000 and "nextToken" in first
        for item in first["executions"][-5:]:
            sfn.stop_execution(executionArn=item["executionArn"], cause="test")
        second = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=1000, nextToken=first["nextToken"])
        assert len(second["executions"]) == 300 and "nextToken" not in second
        with pytest.raises(ClientError) as too_many:
            sfn.list_executions(stateMachineArn=arn, maxResults=1001)
        assert too_many.value.response["Error"]["Code"] == "ValidationException"
        # the stop quota: 1,000 at once, then 200 per second of the bucket's clock (frozen here, moved by hand); it
        # counts the stack's calls, so these are the stopper's
        frozen = FakeClock()
        stopper = PRINCIPAL.set("EventLoopStopFunction")
        aws_sfn.BUCKETS["states:StopExecution"] = TokenBucket(1000, 200, frozen.monotonic)
        arns = [e["executionArn"] for e in second["executions"] + first["executions"][:-5]]

        def outcome(execution: str) -> str:
            try:
                sfn.stop_execution(executionArn=execution, cause="test")
            except ClientError as error:
                return str(error.response["Error"]["Code"])
            return "ok"

        outcomes = [outcome(execution) for execution in arns[:1100]]
        assert (outcomes.count("ok"), outcomes.count("ThrottlingException")) == (1000, 100)
        frozen.sleep(0.5)
        outcomes = [outcome(execution) for execution in arns[1000:1200]]
        assert (outcomes.count("ok"), outcomes.count("ThrottlingException")) == (100, 100)
        PRINCIPAL.reset(stopper)
        stopped = sfn.describe_execution(executionArn=arns[0])
        assert (stopped["status"], stopped["cause"]) == ("ABORTED", "test")
        # the account's own buckets run on real time plus simulated waits: advancing it refills them without sleeping
        before = account.clock.now()
        account.clock.advance(30.0)
        assert account.clock.now() - before >= 30.0


class FakeListing:
    """ListExecutions over a list already in AWS's order (pages of `maxResults`), DescribeExecution counted."""

    def __init__(self, items: list[dict[str, Any]]):
        self.items = items
        self.list_calls = 0
        self.described: list[str] = []

    def list_executions(self, **params: Any) -> dict[str, Any]:
        self.list_calls += 1
        start = int(params.get("nextToken", 0))
        page: dict[str, Any] = {"executions": self.items[start : start + params["maxResults"]]}
        if start + params["maxResults"] < len(self.items):
            page["nextToken"] = str(start + params["maxResults"])
        return page

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.described.append(executionArn)
        bucket = "processed-data-bucket" if "processed" in executionArn else "raw-data-bucket"
        return {"input": json.dumps({"detail": {"bucket": {"name": bucket}, "object": {"key": "incoming/a.csv"}}})}


class NoDatapoints:
    def get_metric_statistics(self, **_: Any) -> dict[str, Any]:
        return {"Datapoints": []}


def execution(name: str, started: datetime, stopped: datetime | None = None) -> dict[str, Any]:
    item = {"executionArn": f"arn:{name}", "status": "RUNNING" if stopped is None else "SUCCEEDED", "startDate": started}
    return item | ({"stopDate": stopped} if stopped else {})


def check(sfn: FakeListing, since: datetime, sample: int = 100) -> dict[str, Any]:
    return event_loop.verify(
        NoDatapoints(),
        sfn,
        state_machine_arn="arn:sm",
        processed_bucket="processed-data-bucket",
        threshold=1_000_000,
        since=since,
        end=since + timedelta(minutes=5),
        sample_size=sample,
    )


def test_the_check_reads_past_an_old_execution_that_ended_after_the_fix() -> None:
    # GIVEN, in AWS's order, an execution started before the fix that ended last (closed: by stop date), then 1,500
    # raw-bucket starts, then three from processed-bucket objects (the earliest after the fix), then older ones
    since = START + timedelta(hours=2)
    late = [execution("old-backfill", START, stopped=since + timedelta(minutes=4))]
    raw = [execution(f"raw-{i}", since + timedelta(seconds=200 - i / 10)) for i in range(1500)]
    processed = [execution(f"processed-{i}", since + timedelta(seconds=3 - i)) for i in range(3)]
    before = [execution(f"before-{i}", since - timedelta(seconds=1 + i)) for i in range(500)]
    sfn = FakeListing(late + raw + processed + before)
    # WHEN the check runs with a sample that covers them all
    result = check(sfn, since, sample=250)
    # THEN it counted every start since the fix, not the old one, and found the processed-bucket starts' share
    assert (result["startedSince"], result["listedAll"]) == (1503, True)
    assert "arn:old-backfill" not in sfn.described
    assert result["stopped"] is False


def test_the_check_stays_within_its_budget_under_thousands_of_starts() -> None:
    # GIVEN 30,000 starts since the fix
    since = START
    sfn = FakeListing([execution(f"raw-{i}", since + timedelta(seconds=300 - i / 100)) for i in range(30_000)])
    # WHEN the check runs
    result = check(sfn, since, sample=100)
    # THEN it listed at most 20 pages and described 100, and does not call an unfinished list a stopped loop
    assert sfn.list_calls == event_loop.VERIFY_MAX_PAGES and len(sfn.described) == 100
    assert (result["listedAll"], result["stopped"]) == (False, False)
