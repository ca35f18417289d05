"""The JSON Schemas shipped with the functions (also read by the CLI and the tests).

jsonschema is imported on first use: it is a fifth of a handler's cold start, and the approval page needs it only
when a decision is posted.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from referencing import Registry

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@cache
def _registry() -> Registry:
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        resources.append((path.name, Resource.from_contents(json.loads(path.read_text()))))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMA_DIR / name).read_text())
    return Draft202012Validator(schema, registry=_registry())


def errors(name: str, document: Any) -> list[str]:
    """Every violation of schema `name`, as readable one-liners ("config.verifyWaitSeconds: -1 is less than ...")."""
    found = []
    for error in sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "input"
        found.append(f"{where}: {error.message}")
    return found
