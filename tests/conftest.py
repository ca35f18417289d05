"""Shared fixtures: fake AWS credentials (never real ones), the functions/ directory importable, a Lambda context, the
approval service's table for fast tests; Hypothesis without its per-example time limit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approval_fakes import create_approvals_table, emptied
from hypothesis import settings
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from shared.aws import reset_clients  # noqa: E402 - functions/ is importable from the line above

# Hypothesis fails an example that takes over 200 ms by default: a wall-clock limit, which a loaded CI runner can break
# with nothing wrong in the code. Time is measured by `make bench`, never asserted by a test.
settings.register_profile("project", deadline=None)
settings.load_profile("project")


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


class Context:
    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> Context:
    return Context()


@pytest.fixture(scope="module")
def approvals_table_of_module() -> Iterator[Any]:
    """One ApprovalsTable per test module, in moto: creating it is most of a fast test's time (tests take
    `approvals_table`, the same table emptied)."""
    with mock_aws():
        reset_clients()
        yield create_approvals_table()
        reset_clients()


@pytest.fixture
def approvals_table(approvals_table_of_module: Any) -> Any:
    """The module's ApprovalsTable with no item left: each test reads only what it wrote."""
    return emptied(approvals_table_of_module)
