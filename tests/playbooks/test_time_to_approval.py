"""The approver hears of an incident quickly: each playbook's main scenario sends its approval e-mail within the
bench's target of state transitions (every transition before it is latency at 3 a.m., and a billed transition)."""

from __future__ import annotations

import pytest

from playbooks import bench, scenario, simulate


@pytest.mark.parametrize(("playbook", "name"), sorted(bench.MAIN_SCENARIO.items()))
def test_the_approval_email_goes_out_within_the_target(playbook: str, name: str) -> None:
    # WHEN the main scenario runs up to the approval and the approver rejects
    result = simulate.run(scenario.load(playbook, name), decision="reject")
    # THEN the approval state was entered within the target, and it did send the e-mail
    assert result.transitions_before_approval is not None
    assert result.transitions_before_approval <= bench.TARGETS["before_approval"], result.states
    assert any("approval" in email["subject"].lower() for email in result.emails), result.emails
