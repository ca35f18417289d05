"""`playbooks assure` as a gate: fault matrix, least privilege, secrets and ASL coverage over every playbook."""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import assure

# Minutes of runs: `make assure` runs these; `make test` does not until every playbook passes them.
pytestmark = pytest.mark.assurance


@pytest.fixture(scope="session")
def results() -> dict[str, Any]:
    return assure.run_all()


def test_every_fault_is_survived_or_handled(results: dict[str, Any]) -> None:
    problems = [f"{r.playbook}/{r.scenario} {r.kind} {r.state or ''}: {p}" for r in results["runs"] for p in r.problems]
    assert problems == []
    kinds = {r.kind for r in results["runs"]}
    assert kinds == {"baseline", "transient", "persistent"}


def test_every_role_calls_exactly_what_it_is_granted(results: dict[str, Any]) -> None:
    gaps = {role: (row["missing"], row["excess"]) for role, row in results["least_privilege"].items() if row["missing"] or row["excess"]}
    assert gaps == {}


def test_no_token_approval_id_or_credential_leaks(results: dict[str, Any]) -> None:
    assert results["secrets"] == []
    assert any(run.secrets for run in results["runs"])  # there were secrets to look for


def test_state_and_transition_coverage_meets_the_target(results: dict[str, Any]) -> None:
    low = [f for f in assure.failures(results) if "coverage" in f]
    assert low == []


def test_assurance_page_is_fresh(results: dict[str, Any]) -> None:
    assert assure.REPORT.read_text() == assure.render(results), "run `playbooks assure`"
