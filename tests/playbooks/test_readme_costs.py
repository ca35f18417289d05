"""The README's cost per run is what a run costs: each main scenario's transitions, Lambda invocations and price, as
`make bench` measures them, are the figures of the README's table (they moved unnoticed when steps were added)."""

from __future__ import annotations

import re

import pytest

from playbooks import bench, project, scenario, simulate


@pytest.mark.parametrize(("playbook", "name"), sorted(bench.MAIN_SCENARIO.items()))
def test_the_readme_states_what_a_run_costs(playbook: str, name: str) -> None:
    # GIVEN the README's row for the playbook's main scenario
    row = re.search(rf"^\| {playbook} / {name} \| (\d+) \| (\d+) \| \$([0-9.]+) \|$", (project.ROOT / "README.md").read_text(), re.M)
    assert row, f"no cost row for {playbook} / {name} in README.md"
    # WHEN the scenario runs as the bench runs it
    result = simulate.run(scenario.load(playbook, name))
    # THEN the row has its transitions, invocations and price (to the row's four decimals)
    assert (int(row[1]), int(row[2]), row[3]) == (result.transitions, result.lambda_invocations, f"{bench.cost(result):.4f}")
