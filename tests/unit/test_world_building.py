"""Building a scenario's world: it is built as declared, or the scenario fails with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from playbooks import etl_world, project, scenario
from playbooks.local.account import LocalAccount
from playbooks.local.aws import sfn as aws_sfn


def test_a_world_execution_that_never_blocks_is_an_error_not_a_different_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    world = scenario.load("execution-stuck", "lambda-timeout").data["world"]
    # GIVEN a machine so starved that the scenario's execution is still busy when the deadline passes
    monkeypatch.setattr(etl_world, "SETTLE_DEADLINE_S", 0.0)
    monkeypatch.setattr(aws_sfn, "busy_executions", lambda: ["still working"])
    with LocalAccount() as local, pytest.raises(project.ProjectError, match="did not finish or block"):
        # WHEN the world is built THEN it says so, instead of letting the playbook diagnose a half-built incident
        scenario.build_world(local, world, datetime.now(UTC))
