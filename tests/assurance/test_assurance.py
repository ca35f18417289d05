"""`playbooks assure` as a gate in `make test`: fault matrix, bad input, concurrency, least privilege, scanners, secrets
and ASL coverage over every playbook. One session-wide run (a few minutes, fanned out over the cores) feeds every test.
"""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import assure, project, scenario

# `make test` runs with --dist loadfile: this file's tests share one worker, so the session-wide run is made once.
pytestmark = pytest.mark.assurance


@pytest.fixture(scope="session")
def results() -> dict[str, Any]:
    return assure.run_all()


def test_every_fault_is_survived_or_handled(results: dict[str, Any]) -> None:
    problems = [f"{r.playbook}/{r.scenario} {r.kind} {r.state or ''}: {p}" for r in results["runs"] for p in r.problems]
    assert problems == []
    kinds = {r.kind for r in results["runs"]}
    assert kinds == {"baseline", "pagination", "transient", "persistent", assure.DENIAL, assure.LARGE_PAYLOAD}
    # the states only small pages reach (a next page's read) had their faults too, every kind, with small pages
    paged_faults = {(r.playbook, r.kind) for r in results["runs"] if r.small_pages and r.kind != "pagination"}
    for playbook_id in ("execution-stuck", "access-denied", "event-loop"):
        assert {kind for p, kind in paged_faults if p == playbook_id} == {"transient", "persistent", assure.DENIAL}, playbook_id
    # every scenario ran again with small and empty pages
    paged = {(r.playbook, r.scenario) for r in results["runs"] if r.kind == "pagination"}
    assert paged == {(r.playbook, r.scenario) for r in results["runs"] if r.kind == "baseline"}
    # every scenario whose pipeline executions a playbook reads ran again with ~200 KB inputs: execution-stuck's and
    # access-denied's (its restart of the failed run)
    large = {(r.playbook, r.scenario) for r in results["runs"] if r.kind == assure.LARGE_PAYLOAD}
    for playbook_id in ("execution-stuck", "access-denied"):
        world = {s.name: s.data.get("world", {}) for s in scenario.scenarios(playbook_id)}
        reads = {name for name, w in world.items() if w.get("executions") or w.get("failedExecutions")}
        assert {s for p, s in large if p == playbook_id} == reads and len(reads) > 1, playbook_id
    # every playbook and the undo had faults injected, and they met their calls
    assert {r.playbook for r in results["runs"] if r.kind == "transient" and r.faults} == set(project.state_machines())


def test_every_role_calls_exactly_what_it_is_granted(results: dict[str, Any]) -> None:
    gaps = {role: (row["missing"], row["excess"]) for role, row in results["least_privilege"].items() if row["missing"] or row["excess"]}
    assert gaps == {}
    unexplained = {role: [a for a in row["star"] if a not in assure.NO_RESOURCE_LEVEL] for role, row in results["least_privilege"].items()}
    assert {role: actions for role, actions in unexplained.items() if actions} == {}
    assert [a for row in results["least_privilege"].values() for a in row["wildcards"]] == []
    # resource level: every granted pattern has its reason (resources no call touched are listed on the page)
    assert [p for row in results["least_privilege"].values() for p in row["patterns"] if not p["reason"]] == []


def test_bad_input_is_refused_at_once_and_unrelated_alarms_start_nothing(results: dict[str, Any]) -> None:
    cases = {case["playbook"]: case for case in results["bad_input"]}
    assert set(cases) == set(project.state_machines())
    assert {p: case["problems"] for p, case in cases.items() if case["problems"]} == {}
    assert all(case["tried"] > 0 and case["refused"] == case["tried"] and case["most_states"] <= 2 for case in cases.values())
    # the playbooks an alarm starts were each tried with other alarms and other alarm states
    assert all(cases[p]["unrelated_events"] > 0 for p in ("lambda-throttling", "execution-stuck", "access-denied", "event-loop"))


def test_one_run_per_resource_and_a_crashed_runs_lock_expires(results: dict[str, Any]) -> None:
    low = [f for f in assure.failures(results) if "at once" in f or "stale-lock" in f]
    assert low == []
    assert {case["playbook"] for case in results["concurrency"]} == set(project.playbooks())


def test_with_the_brake_engaged_no_scenario_changes_anything_or_asks(results: dict[str, Any]) -> None:
    cases = results["brake"]
    every = {(p, s.name) for p in project.playbooks() for s in assure.scenario.scenarios(p)}
    assert {(c["playbook"], c["scenario"]) for c in cases} == every
    assert [c for c in cases if c["mutations"] or c["approvals"]] == []
    assert sum(1 for c in cases if "paused" in c["outcomes"]) > len(project.playbooks())  # the brake was met, not skipped


def test_undo_is_in_the_fault_matrix_and_coverage(results: dict[str, Any]) -> None:
    undo = [r for r in results["runs"] if r.playbook == "undo"]
    assert {r.kind for r in undo} == {"baseline", "pagination", assure.LARGE_PAYLOAD, "transient", "persistent"}
    assert "undo" in results["coverage"]


def test_scanners_find_nothing(results: dict[str, Any]) -> None:
    scans = results["scanners"]
    assert scans["cfn-lint"] == {"template.yaml": [], "SAM-transformed template": []}
    assert {target: outcome for target, outcome in scans["checkov"].items() if outcome != {"failed": []}} == {}
    assert all(scans["checkov_skips"].values())


def test_no_token_approval_id_or_credential_leaks(results: dict[str, Any]) -> None:
    assert results["secrets"] == []
    assert any(run.secrets for run in results["runs"])  # there were secrets to look for


def test_state_and_transition_coverage_meets_the_target(results: dict[str, Any]) -> None:
    low = [f for f in assure.failures(results) if "coverage" in f]
    assert low == []


def test_nothing_else_fails(results: dict[str, Any]) -> None:
    assert assure.failures(results) == []


def test_assurance_page_is_fresh(results: dict[str, Any]) -> None:
    assert assure.REPORT.read_text() == assure.render(results), "run `playbooks assure`"
