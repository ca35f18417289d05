"""The README's cost per run is what a run costs: each main scenario's transitions, Lambda invocations and price, as
`make bench` measures them, are the figures of the README's table (they moved unnoticed when steps were added).

Transitions and invocations are exact. The price also bills the handlers' time, which the local account measures as
the in-process wall time of each call: more on a loaded machine (event-loop's first stop call, which builds its SDK
clients, takes 0.7 s on an idle machine; on a busy CI runner the run's Lambda time rounded its price up by $0.0001).
So the README states the price of the transitions and requests with the Lambda time of a quiet run, and the test holds
it between the price of the same run without Lambda time and what this run measured, both to the row's four
decimals."""

from __future__ import annotations

import dataclasses
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
    # THEN the row has its transitions and invocations
    assert (int(row[1]), int(row[2])) == (result.transitions, result.lambda_invocations)
    # AND its price is at least what the transitions and requests cost, and at most what this run cost with its Lambda time
    floor, measured = bench.cost(dataclasses.replace(result, lambda_gb_seconds=0.0)), bench.cost(result)
    assert round(floor, 4) <= float(row[3]) <= round(measured, 4), (row[3], floor, measured)
