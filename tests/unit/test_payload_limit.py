"""The local account's 256 KiB state payload quota: States.DataLimitExceeded, which States.ALL does not catch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from playbooks.local.account import TERMINAL, LocalAccount

ROLE = "arn:aws:iam::123456789012:role/pipeline-role"
BIG = "x" * (257 * 1024)  # over 262,144 bytes of UTF-8
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount() as local:
        local.client("dynamodb").create_table(
            TableName="payload-limit",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        local.client("dynamodb").put_item(TableName="payload-limit", Item={"pk": {"S": "big"}, "blob": {"S": BIG}})
        yield local


def run(account: LocalAccount, name: str, task: dict[str, Any], execution_input: dict[str, Any] | None = None) -> dict[str, Any]:
    definition = {
        "StartAt": "Task",
        "States": {
            "Task": task | {"Next": "Done"},
            "Done": {"Type": "Succeed"},
            "Caught": {"Type": "Pass", "Result": "caught", "End": True},
        },
    }
    sfn = account.client("stepfunctions")
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input or {}))["executionArn"]
    end = time.monotonic() + DEADLINE_S
    while account.describe(arn)["status"] not in TERMINAL and time.monotonic() < end:
        time.sleep(0.01)
    return account.describe(arn)


def read_big(catch: list[str], retry: list[str] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
        "Parameters": {"TableName": "payload-limit", "Key": {"pk": {"S": "big"}}},
        "Catch": [{"ErrorEquals": catch, "Next": "Caught"}],
    }
    if retry:
        task["Retry"] = [{"ErrorEquals": retry, "MaxAttempts": 2}]
    return task


def test_an_oversized_result_is_not_caught_by_states_all(account: LocalAccount) -> None:
    # GIVEN a task whose SDK result (one 257 KiB item) is over the quota, caught and retried on States.ALL
    # WHEN it runs
    described = run(account, "result-over-quota", read_big(["States.ALL"], retry=["States.ALL"]))
    # THEN the execution fails with States.DataLimitExceeded: neither the retrier nor the catcher matched it
    assert (described["status"], described["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "returned a result with a size exceeding the maximum number of bytes service limit" in described["cause"]
    history = account.client("stepfunctions").get_execution_history(executionArn=described["executionArn"])["events"]
    assert sum(1 for e in history if e["type"] == "TaskScheduled") == 1


def test_a_catcher_naming_the_error_catches_it(account: LocalAccount) -> None:
    described = run(account, "result-caught-by-name", read_big(["States.DataLimitExceeded"]))
    assert described["status"] == "SUCCEEDED"
    assert "caught" in described["output"]


def test_an_oversized_task_input_fails_before_the_call(account: LocalAccount) -> None:
    # GIVEN a task whose Parameters carry a 140 KiB execution input twice
    item = {"pk": {"S": "written"}, "blob": {"S.$": "$.blob"}, "copy": {"S.$": "$.blob"}}
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": "payload-limit", "Item": item},
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    }
    # WHEN it runs
    described = run(account, "input-over-quota", task, {"blob": BIG[: 140 * 1024]})
    # THEN nothing was written and the execution failed uncaught
    assert (described["status"], described["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "Item" not in account.client("dynamodb").get_item(TableName="payload-limit", Key={"pk": {"S": "written"}})


def test_within_the_quota_nothing_changes(account: LocalAccount) -> None:
    account.client("dynamodb").put_item(TableName="payload-limit", Item={"pk": {"S": "small"}, "blob": {"S": "x" * 1000}})
    task = read_big(["States.ALL"]) | {"Parameters": {"TableName": "payload-limit", "Key": {"pk": {"S": "small"}}}}
    assert run(account, "within-quota", task)["status"] == "SUCCEEDED"


# ------------------------------------------------------------------------------------------------ States.Runtime
def read_missing_path(catch: list[str], retry: list[str] | None = None) -> dict[str, Any]:
    """A task whose Parameters name a JSONPath its input does not have: States.Runtime on AWS."""
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
        "Parameters": {"TableName": "payload-limit", "Key": {"pk": {"S.$": "$.not.there"}}},
        "Catch": [{"ErrorEquals": catch, "Next": "Caught"}],
    }
    if retry:
        task["Retry"] = [{"ErrorEquals": retry, "MaxAttempts": 2}]
    return task


@pytest.mark.parametrize("names", [["States.ALL"], ["States.Runtime"]], ids=["states-all", "named"])
def test_a_runtime_error_is_caught_and_retried_by_nothing(account: LocalAccount, names: list[str]) -> None:
    # GIVEN a task whose Parameters select a path the input lacks, caught and retried on States.ALL (or by name)
    # WHEN it runs
    described = run(account, f"runtime-{names[0].split('.')[1].lower()}", read_missing_path(names, retry=names))
    # THEN the execution fails with States.Runtime: no retrier ran it again and no catcher took it
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "The JSONPath '$.not.there' could not be found in the input" in described["cause"]
    history = account.client("stepfunctions").get_execution_history(executionArn=described["executionArn"])["events"]
    assert not any(e["type"] == "PassStateEntered" for e in history)
