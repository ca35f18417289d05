"""Generated documentation stays in step with the ASL, the template, the schemas and the local account."""

from __future__ import annotations

import pytest

from playbooks import docs, project


@pytest.mark.parametrize("relative", sorted(docs.expected_files()))
def test_generated_page_is_fresh(relative: str) -> None:
    path = project.ROOT / relative
    assert path.exists() and path.read_text() == docs.expected_files()[relative], "run `make docs`"


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_diagram_marks_approvals_changes_and_outcomes(playbook: str) -> None:
    chosen = project.playbook(playbook)
    text = docs.mermaid(chosen.definition, chosen.logical_id)
    assert text.startswith("flowchart TD")
    for kind in ("approval", "mutating", "outcome"):
        assert f"classDef {kind}" in text and f" {kind}\n" in text


def test_every_change_in_the_docs_names_its_approval() -> None:
    for playbook in project.playbooks().values():
        gated = docs.gates(playbook.definition, playbook.logical_id)
        assert gated and all(approvals for approvals in gated.values()), playbook.id
