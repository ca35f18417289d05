"""Generated documentation stays in step with the ASL, the template, the schemas and the local account."""

from __future__ import annotations

import re

import pytest

from playbooks import docs, project, validate


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


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_every_trigger_the_template_wires_is_on_the_page(playbook: str) -> None:
    # GIVEN everything in the template that starts this playbook: its own events, and each function allowed to start it
    template = project.template()
    resources = template["Resources"]
    logical_id = project.playbook(playbook).logical_id
    starters = [
        r
        for r, res in resources.items()
        if res["Type"] == "AWS::Serverless::Function" and logical_id in docs._refs(res["Properties"].get("Policies"))
    ]
    own = list(resources[logical_id]["Properties"].get("Events") or {})
    # THEN the page's Triggers section names each, and the alarms or topics behind them
    triggers = _section(docs.page(project.playbook(playbook)), "Triggers")
    for name in own + starters:
        assert f"`{name}`" in triggers
    assert own or starters, "a playbook only a console can start"


def test_the_watchdog_and_the_cost_notifications_are_named() -> None:
    stuck = _section(docs.page(project.playbook("execution-stuck")), "Triggers")
    assert all(f"`{name}`" in stuck for name in ("StuckExecutionFanOutFunction", "ExecutionStuckAlarm", "ExecutionWatchdogFunction"))
    cost = _section(docs.page(project.playbook("cost-spike")), "Triggers")
    assert all(f"`{name}`" in cost for name in ("CostSpikeStarterFunction", "CostAlertTopic", "CostSpikeBudget", "CostAnomalySubscription"))


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_every_input_field_has_a_meaning_and_nothing_is_unnamed(playbook: str) -> None:
    text = docs.page(project.playbook(playbook))
    rows = [line for line in _section(text, "Triggers").splitlines() if line.startswith("| `")]
    assert rows
    assert [row for row in rows if row.rstrip().endswith("|  |")] == []
    assert re.search(r"(?<!`)``(?!`)", text) is None, "an empty name"


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_the_diagram_colours_exactly_the_changes_in_the_table(playbook: str) -> None:
    chosen = project.playbook(playbook)
    definition = chosen.definition
    text = docs.mermaid(definition, chosen.logical_id)
    ids = {f"s{index}": name for index, (name, _) in enumerate(validate.states_of(definition))}
    coloured: list[str] = next(
        (line.split()[1].split(",") for line in text.splitlines() if line.strip().startswith("class ") and line.endswith(" mutating")), []
    )
    assert {ids[node] for node in coloured} == set(docs.gates(definition, chosen.logical_id))


def _strict_yaml_loader() -> type:
    import yaml

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        assert not repeated, f"repeated keys {repeated} at {node.start_mark}"
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Strict


@pytest.mark.parametrize(
    "relative", ["README.md", *sorted(str(p.relative_to(project.ROOT)) for p in (project.ROOT / "docs").rglob("*.md"))]
)
def test_yaml_samples_in_the_docs_have_no_repeated_keys(relative: str) -> None:
    import yaml

    for block in re.findall(r"```ya?ml\n(.*?)```", (project.ROOT / relative).read_text(), re.S):
        yaml.load(block, _strict_yaml_loader())


@pytest.mark.parametrize("relative", sorted(docs.diagram_sources()))
def test_svg_drawing_is_of_the_current_diagram(relative: str) -> None:
    # The SVG carries its Mermaid source's digest: a changed ASL or architecture without `make diagrams` fails here.
    path = project.ROOT / relative
    assert path.exists() and docs.source_mark(docs.diagram_sources()[relative]) in path.read_text(), "run `make diagrams`"
