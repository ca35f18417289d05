"""A person in a real browser: opens the e-mailed link, sees the plan, approves; the playbook resumes; a second
window's click is told the request was already decided. Headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from approval_helpers import wait_for

from playbooks import scenario, simulate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make test installs it)")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine; .ci/run installs Debian's chromium"),
]
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_LINK = re.compile(r"open (http://127\.0\.0\.1:\d+/approvals/[A-Za-z0-9_-]{22})")


def test_approver_approves_in_a_browser_and_a_second_click_is_already_decided(tmp_path: Path) -> None:
    lines: list[str] = []
    results: list[Any] = []
    finished, done_with_page = threading.Event(), threading.Event()

    def linger() -> None:
        finished.set()
        done_with_page.wait(timeout=120)

    def simulation() -> None:
        throttled = scenario.load("lambda-throttling", "throttled")
        results.append(simulate.run(throttled, decision="browser", on_progress=lines.append, deadline_s=120, linger=linger))

    run = threading.Thread(target=simulation, daemon=True)
    run.start()
    link = wait_for(lambda: next((m.group(1) for line in lines if (m := LOCAL_LINK.search(line))), None), "the approval link", 60)

    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        first, second = context.new_page(), context.new_page()
        first.goto(link)
        second.goto(link)
        # THEN the page shows the plan and what will change
        assert "Raise reserved concurrency of ingest-handler from 100 to 200." in first.inner_text("body")
        assert first.inner_text("#status") == "pending"
        first.screenshot(path=str(tmp_path / "approval-page.png"), full_page=True)
        # WHEN the approver presses Approve
        first.click("#approve")
        assert "the plan is approved and the playbook has resumed" in first.inner_text("#result")
        assert finished.wait(timeout=120), "the playbook did not finish"
        # AND a click in the other window, opened before the decision, changes nothing
        second.click("#approve")
        assert "already decided" in second.inner_text("#result")
        browser.close()
    done_with_page.set()
    run.join(timeout=60)
    assert results and results[0].outcome == "remediated"
    assert results[0].mutations == ["lambda:PutFunctionConcurrency ingest-handler"]
