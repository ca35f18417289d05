"""The project's own files: the SAM template, the playbooks it declares, their ASL, schemas and scenarios."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml


class ProjectError(Exception):
    """A problem with the user's input or the project's files, reported as one clear message (CLI exit 1)."""


ROOT = Path(os.environ.get("PLAYBOOKS_ROOT", Path(__file__).resolve().parents[2]))
TEMPLATE = ROOT / "template.yaml"
FUNCTIONS = ROOT / "functions"
SCHEMAS = ROOT / "functions" / "schemas"
SCENARIOS = ROOT / "scenarios"


def import_function_module(name: str) -> Any:
    """A module of functions/ (the Lambda code: `shared.schemas`, `validate_input` ...), importing it as Lambda does."""
    import importlib
    import sys

    if str(FUNCTIONS) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS))
    return importlib.import_module(name)


EVENTS = ROOT / "events"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt ...) read as their long forms.

    Written here rather than depending on a CloudFormation YAML package: it is the whole of what is needed.
    """


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@cache
def _template_cached(path: str, mtime: float) -> dict[str, Any]:
    return dict(load_yaml(Path(path)))


def template() -> dict[str, Any]:
    """The SAM template (a fresh copy each call)."""
    return copy.deepcopy(_template_cached(str(TEMPLATE), TEMPLATE.stat().st_mtime))


@dataclass(frozen=True)
class Playbook:
    id: str  # kebab-case, the ASL file's stem
    logical_id: str  # the template's AWS::Serverless::StateMachine
    asl_path: Path
    description: str

    @property
    def definition(self) -> dict[str, Any]:
        return dict(json.loads(self.asl_path.read_text()))

    @property
    def input_schema(self) -> Path:
        return SCHEMAS / f"{self.id}.input.json"

    @property
    def scenario_dir(self) -> Path:
        return SCENARIOS / self.id


# State machines of the stack that are safety controls, not playbooks: no trigger of their own, no runbook.
SAFETY_STATE_MACHINES = ("undo",)


def playbooks() -> dict[str, Playbook]:
    """Every playbook the template declares, by id, in template order."""
    return {key: value for key, value in state_machines().items() if key not in SAFETY_STATE_MACHINES}


def state_machines() -> dict[str, Playbook]:
    """Every state machine the template declares (the playbooks and undo), by id, in template order."""
    found: dict[str, Playbook] = {}
    for logical_id, resource in template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        asl_path = ROOT / resource["Properties"]["DefinitionUri"]
        playbook_id = asl_path.name.removesuffix(".asl.json")
        comment = json.loads(asl_path.read_text()).get("Comment", "")
        found[playbook_id] = Playbook(playbook_id, logical_id, asl_path, comment)
    return found


def playbook(playbook_id: str) -> Playbook:
    """A playbook, or the undo state machine (which runs, validates and reports like one)."""
    known = state_machines()
    if playbook_id not in known:
        raise ProjectError(f"unknown playbook {playbook_id!r}; known: {', '.join(known)}")
    return known[playbook_id]
