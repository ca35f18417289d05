"""statelint and asl-validator pass every playbook (substitutions filled) and catch a broken definition."""

from __future__ import annotations

import json

import pytest

from playbooks import asl_lint, project

pytestmark = pytest.mark.skipif(not asl_lint.ASL_VALIDATOR.exists(), reason="asl-validator not installed: `make asl-lint` installs it")


def test_both_validators_pass_every_playbook() -> None:
    assert asl_lint.run() == []


def test_substitutions_are_filled_with_values_of_their_kind() -> None:
    text = asl_lint.filled(project.playbook("event-loop"))
    assert "${" not in text
    assert "arn:aws:lambda:us-east-1:123456789012:function:StopFunction" in text


def test_both_validators_catch_a_transition_to_a_missing_state() -> None:
    definition = json.loads(asl_lint.filled(project.playbook("lambda-throttling")))
    definition["States"]["Validate the input"]["Next"] = "No such state"
    found = asl_lint.complaints(json.dumps(definition))
    assert found["statelint"] and found["asl-validator"]
