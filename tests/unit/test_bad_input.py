"""Bad input, for every playbook: whatever a console start or a stray event carries, the first state either accepts
it or refuses it with InvalidInput naming the problem; it never crashes, and schema-invalid input is always refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import validate_input
from playbooks import project
from shared.errors import InvalidInput
from shared.schemas import errors

STARTED = "2026-11-25T03:00:00.000Z"
PLAYBOOKS = sorted(project.playbooks())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def known_fields(playbook: str) -> list[str]:
    schema = json.loads(project.playbook(playbook).input_schema.read_text())
    return [*schema.get("properties", {}), "config", "dryRun"]


@pytest.fixture(autouse=True)
def deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the template gives the validator function
    for key, value in {
        "PIPELINE_FUNCTIONS": "ingest-handler,transform-handler",
        "ETL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow",
        "ETL_STATE_MACHINE": "etl-workflow",
        "ETL_EVENT_RULE": "etl-s3-events",
        "COST_BUDGET_NAME": "etl-pipeline-monthly",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_input_is_refused_clearly_and_never_crashes(playbook: str, data: Any) -> None:
    # GIVEN a document built from the playbook's own field names with arbitrary values, or anything at all
    fields = known_fields(playbook)
    document = data.draw(st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from([*fields, "extra"]), JSON_VALUES, max_size=5)))
    schema_problems = errors(f"{playbook}.input.json", document) if isinstance(document, dict) else ["not an object"]
    # WHEN the first state validates it
    try:
        validate_input.validate(playbook, document, "arn:aws:states:us-east-1:123456789012:execution:x:y", STARTED)
    except InvalidInput as refusal:
        # THEN a refusal says what is wrong
        assert str(refusal).strip()
        return
    # AND whatever passes met the schema
    assert schema_problems == [], f"accepted {document!r} despite {schema_problems}"
