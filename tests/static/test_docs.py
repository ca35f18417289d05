"""Generated documentation stays in step with the code."""

from __future__ import annotations

from playbooks.local.moto_gaps import render_doc
from playbooks.project import ROOT


def test_local_account_page_is_fresh() -> None:
    assert (ROOT / "docs" / "local-account.md").read_text() == render_doc(), "run `make docs`"
