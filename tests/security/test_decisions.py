"""A decision is what the approver ticked, and it is never lost: a callback Step Functions refuses is not recorded,
the approver is told, and pressing again decides. Faults are injected on the local account's Step Functions."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from approval_helpers import SIX, page, start_cost_spike_until_approval, start_until_approval, wait_for

from playbooks import project, scenario, simulate
from playbooks.local.account import LocalAccount
from playbooks.local.approval_web import click, read_form
from playbooks.local.recorder import RECORDER, Fault


def test_the_form_approves_exactly_the_ticked_actions() -> None:
    with LocalAccount() as account:
        execution, ticket = start_cost_spike_until_approval(account)
        # WHEN the approver unticks four of the six boxes and presses Approve
        answer = click(account, ticket, "approve", actions=[SIX[1], SIX[4]])
        assert answer["statusCode"] == 200, answer["body"]
        wait_for(lambda: account.describe(execution)["status"] == "SUCCEEDED", "the playbook to finish")
        output = json.loads(next(c.params["output"] for c in RECORDER.calls if c.api == "states:SendTaskSuccess"))
        assert output["approved"] == {SIX[1]: True, SIX[4]: True}
        changed = [c.api for c in RECORDER.calls if c.principal == "CostSpikeStateMachine" and c.error is None]
        assert "dynamodb:UpdateTable" in changed and "logs:PutRetentionPolicy" in changed
        assert not {"lambda:UpdateFunctionConfiguration", "s3:PutBucketIntelligentTieringConfiguration"} & set(changed)


@pytest.mark.parametrize("error", ["ThrottlingException", "AccessDeniedException"])
def test_a_failed_callback_is_not_recorded_and_a_second_press_decides(error: str) -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        # GIVEN Step Functions refuses the first callback (throttled past retries, or a permission error)
        RECORDER.faults.append(Fault(api="states:SendTaskSuccess", error=error, times=1))
        first = click(account, ticket, "approve")
        # THEN the approver is told the decision was not recorded, and the playbook still waits
        assert first["statusCode"] == 503, first["body"]
        assert "NOT recorded" in first["body"] and "press the button again" in first["body"]
        assert account.describe(execution)["status"] == "RUNNING"
        assert read_form(page(account, ticket)) is not None  # the page offers the buttons again
        # WHEN the approver presses again, it is decided (not "already decided") and the playbook resumes
        second = click(account, ticket, "approve")
        assert second["statusCode"] == 200, second["body"]
        wait_for(lambda: account.describe(execution)["status"] == "SUCCEEDED", "the playbook to finish")
        delivered = [c for c in RECORDER.calls if c.api == "states:SendTaskSuccess" and c.error is None]
        assert len(delivered) == 1
        assert json.loads(account.describe(execution)["output"])["outcome"] == "remediated"


def test_a_failed_reject_is_not_recorded_either() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        RECORDER.faults.append(Fault(api="states:SendTaskFailure", error="ThrottlingException", times=1))
        assert click(account, ticket, "reject")["statusCode"] == 503
        assert click(account, ticket, "reject")["statusCode"] == 200
        wait_for(lambda: account.describe(execution)["status"] == "SUCCEEDED", "the playbook to finish")
        assert json.loads(account.describe(execution)["output"])["outcome"] == "rejected"


def test_racing_presses_with_a_failing_callback_still_deliver_exactly_one_decision() -> None:
    with LocalAccount() as account:
        execution, (ticket,) = start_until_approval(account)
        RECORDER.faults.append(Fault(api="states:SendTaskSuccess", error="ThrottlingException", times=1))
        barrier = threading.Barrier(3)
        answers: list[int] = []

        def press() -> None:
            barrier.wait(timeout=10)
            answers.append(click(account, ticket, "approve")["statusCode"])

        threads = [threading.Thread(target=press) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # one press won and was not delivered (503); the others lost the race or, after it was taken back, decided
        assert 503 in answers and len(answers) == 3
        if 200 not in answers:
            assert click(account, ticket, "approve")["statusCode"] == 200
        wait_for(lambda: account.describe(execution)["status"] == "SUCCEEDED", "the playbook to finish")
        assert [c.error for c in RECORDER.calls if c.api == "states:SendTaskSuccess"].count(None) == 1


def test_a_scenario_that_ticks_a_box_the_form_lacks_is_a_clear_error(tmp_path: Path) -> None:
    # GIVEN a scenario whose approver would tick an action the plan (and so the form) does not have
    data = dict(scenario.load("cost-spike", "everything").data)
    data["decision"] = {"approve": ["lower_memory_transform_handler", "delete_the_bucket"]}
    path = tmp_path / "made-up-choice.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(project.ProjectError, match=r"no checkbox for \['delete_the_bucket'\]"):
        simulate.run(scenario.load("cost-spike", str(path)))
    # and nothing was approved on its behalf
    assert not [c for c in RECORDER.calls if c.api == "states:SendTaskSuccess"]


def test_decision_approve_approves_every_action_and_the_scenarios_own_choice_applies_without_it() -> None:
    everything = scenario.load("cost-spike", "everything")
    # --decision approve: every action of the six, whatever the scenario's own partial choice
    approved = simulate.run(everything, decision="approve")
    assert len(approved.mutations) == 6 and approved.outcome == "remediated"
    assert approved.expect_failures == []  # the scenario's expectations are for its own choice, not checked here
    # no --decision: the scenario's three
    own = simulate.run(everything)
    assert own.passed, own.expect_failures
    assert len(own.mutations) == 3
