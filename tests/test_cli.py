"""The CLI contract: `simulate --json` fields, exit codes, clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from playbooks.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "160"}


def test_simulate_json_has_the_contract_fields() -> None:
    result = runner.invoke(app, ["simulate", "lambda-throttling", "--scenario", "throttled", "--decision", "approve", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in (
        "playbook",
        "scenario",
        "status",
        "outcome",
        "states",
        "transitions",
        "lambda_invocations",
        "mutations",
        "emails",
        "duration_s",
    ):
        assert key in data
    assert data["outcome"] == "remediated"
    assert data["mutations"] == ["lambda:PutFunctionConcurrency ingest-handler"]
    assert data["transitions"] == len(data["states"])


def test_list_json_names_the_playbook_and_its_scenarios() -> None:
    result = runner.invoke(app, ["list", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    (playbook,) = [p for p in json.loads(result.stdout) if p["id"] == "lambda-throttling"]
    assert set(playbook["scenarios"]) >= {"throttled", "account-limit", "false-alarm", "self-throttled"}


def test_unknown_scenario_is_a_clear_error() -> None:
    result = runner.invoke(app, ["simulate", "lambda-throttling", "--scenario", "nope"], env=ENV)
    assert result.exit_code == 2
    assert "no scenario 'nope'" in result.output


def test_flags_read_as_flags() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "--dry-run" in result.output and "<bool>" not in result.output
