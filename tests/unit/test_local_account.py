"""The local account's own behaviour: moto's gaps filled as AWS behaves, calls recorded with their principal."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from playbooks.local.account import LocalAccount, Settings
from playbooks.local.recorder import RECORDER, Fault
from playbooks.scenario import build_world


@pytest.fixture(scope="module")
def account() -> LocalAccount:
    with LocalAccount(settings=Settings(concurrency_limit=1000)) as local:
        from datetime import UTC, datetime

        build_world(
            local, {"functions": [{"name": "ingest-handler", "reservedConcurrency": 300}, {"name": "transform-handler"}]}, datetime.now(UTC)
        )
        yield local


def test_account_settings_reflect_the_limit_and_reservations(account: LocalAccount) -> None:
    limit = account.client("lambda").get_account_settings()["AccountLimit"]
    assert (limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]) == (1000, 700)


def test_reservation_that_leaves_less_than_100_unreserved_is_refused(account: LocalAccount) -> None:
    lam = account.client("lambda")
    with pytest.raises(ClientError) as refused:
        lam.put_function_concurrency(FunctionName="transform-handler", ReservedConcurrentExecutions=601)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert (
        lam.put_function_concurrency(FunctionName="transform-handler", ReservedConcurrentExecutions=600)["ReservedConcurrentExecutions"]
        == 600
    )
    lam.delete_function_concurrency(FunctionName="transform-handler")


def test_injected_fault_fires_the_given_number_of_times(account: LocalAccount) -> None:
    RECORDER.faults.append(Fault(api="lambda:GetAccountSettings", error="TooManyRequestsException", status=429, times=1))
    lam = account.client("lambda")
    with pytest.raises(ClientError) as throttled:
        lam.get_account_settings()
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 1000


def test_template_state_machines_run_with_substitutions_resolved(account: LocalAccount) -> None:
    definition = account.client("stepfunctions").describe_state_machine(stateMachineArn=account.state_machine_arn("lambda-throttling"))[
        "definition"
    ]
    assert "${" not in definition
    assert json.loads(definition)["StartAt"] == "Validate the input"


def test_calls_are_attributed_to_the_role_that_makes_them(account: LocalAccount) -> None:
    account.client("lambda").get_function_concurrency(FunctionName="ingest-handler")
    assert RECORDER.calls[-1].principal == "operator"
    assert RECORDER.calls[-1].iam_action == "lambda:GetFunctionConcurrency"
