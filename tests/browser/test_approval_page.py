"""Approvers in a real browser: each opens the e-mailed link served by `simulate --decision browser`, ticks what they
approve and presses a button; the playbook does exactly that. Headless Debian Chromium driven by Playwright: the
browser, not a test, decides which fields the form submits."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from approval_helpers import SIX, wait_for

from playbooks import project, scenario, simulate
from playbooks.local.account import LocalAccount
from playbooks.local.aws import runtime

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
# `UPDATE_SCREENSHOTS=1 pytest tests/browser` refreshes the README's pictures of the page
SCREENSHOTS = project.ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") else None
THREE = [SIX[0], SIX[1], SIX[4]]  # what the approver keeps ticked (everything.yaml's own choice)


class BrowserRun:
    """`simulate --decision browser` in the background: the approval links it prints, then its result. The account
    and the page stay up after the playbook ends until `result()` is asked for (so decided links can be opened)."""

    def __init__(self, run: scenario.Scenario, parameters: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.results: list[simulate.Result] = []
        self.finished, self._release = threading.Event(), threading.Event()

        def linger() -> None:
            self.finished.set()
            self._release.wait(timeout=300)

        def simulation() -> None:
            try:
                self.results.append(
                    simulate.run(
                        run, decision="browser", on_progress=self.lines.append, deadline_s=300, linger=linger, parameters=parameters
                    )
                )
            finally:
                self.finished.set()

        self._thread = threading.Thread(target=simulation, daemon=True)
        self._thread.start()

    def links(self, count: int = 1) -> list[str]:
        def found() -> list[str]:
            links = [m.group(1) for line in self.lines if (m := LOCAL_LINK.search(line))]
            return links if len(links) >= count else []

        return list(wait_for(found, f"{count} approval link(s)", 120))

    def let_the_approval_time_pass(self) -> None:
        """Every waiting approval's TimeoutSeconds elapse on the running account's virtual clock, which the approval
        page and its decision read too (nothing sleeps)."""
        account = runtime.active()
        assert isinstance(account, LocalAccount)
        account.expire_waiting_tasks()

    def result(self) -> simulate.Result:
        assert self.finished.wait(timeout=300), "the playbook did not finish"
        self._release.set()
        self._thread.join(timeout=120)
        assert self.results, "the simulation failed"
        return self.results[0]


@pytest.fixture(scope="module")
def browser() -> Any:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context
    context.close()


def everything() -> scenario.Scenario:
    return scenario.load("cost-spike", "everything")


def tick_only(page: Any, chosen: list[str]) -> None:
    for action in SIX:
        page.set_checked(f"input[type=checkbox][name=actions][value={action}]", action in chosen)


def assert_read_only(page: Any, status: str) -> None:
    assert page.inner_text("#status") == status
    assert page.locator("form").count() == 0
    assert page.locator("button, input[type=checkbox]").count() == 0


def test_approve_a_one_action_plan_and_the_decided_link_is_read_only(context: Any, tmp_path: Path) -> None:
    run = BrowserRun(scenario.load("lambda-throttling", "throttled"))
    (link,) = run.links()
    first, second = context.new_page(), context.new_page()
    first.goto(link)
    second.goto(link)
    # THEN the page shows the plan and what will change
    assert "Raise reserved concurrency of ingest-handler from 100 to 200." in first.inner_text("body")
    assert first.inner_text("#status") == "pending"
    first.screenshot(path=str((SCREENSHOTS or tmp_path) / "approval-page.png"), full_page=True)
    # WHEN the approver presses Approve
    first.click("#approve")
    assert "the plan is approved and the playbook has resumed" in first.inner_text("#result")
    assert run.finished.wait(timeout=120), "the playbook did not finish"
    # AND a click in the other window, opened before the decision, changes nothing
    second.click("#approve")
    assert "already decided" in second.inner_text("#result")
    # AND the link, opened again, shows the decision and offers nothing to press
    first.goto(link)
    assert_read_only(first, "approved")
    result = run.result()
    assert result.outcome == "remediated"
    assert result.mutations == ["lambda:PutFunctionConcurrency ingest-handler"]


def test_reject_a_one_action_plan(context: Any) -> None:
    run = BrowserRun(scenario.load("lambda-throttling", "throttled"))
    (link,) = run.links()
    page = context.new_page()
    page.goto(link)
    page.fill("textarea[name=comment]", "not during the batch window")
    page.click("#reject")
    assert "the plan is rejected" in page.inner_text("#result")
    assert run.finished.wait(timeout=120), "the playbook did not finish"
    # the link now shows who rejected, and why, and nothing to press
    page.goto(link)
    assert_read_only(page, "rejected")
    assert "approver reject: \u201cnot during the batch window\u201d" in page.inner_text("#audit")
    result = run.result()
    assert result.outcome == "rejected" and result.mutations == []


def test_untick_three_of_six_and_approve_applies_exactly_the_ticked_three(context: Any) -> None:
    run = BrowserRun(everything())
    (link,) = run.links()
    page = context.new_page()
    page.goto(link)
    assert page.locator("form input[type=checkbox]:checked").count() == 6
    # WHEN the approver unticks three of the six actions and presses Approve
    tick_only(page, THREE)
    if SCREENSHOTS is not None:
        page.screenshot(path=str(SCREENSHOTS / "approval-page-actions.png"), full_page=True)
    page.click("#approve")
    assert "the plan is approved" in page.inner_text("#result")
    result = run.result()
    # THEN exactly the three ticked changes were made; the other three are reported as declined
    assert result.outcome == "remediated"
    assert result.mutations == [
        "lambda:UpdateFunctionConfiguration transform-handler",
        "dynamodb:UpdateTable etl-metadata",
        "cloudwatchlogs:PutRetentionPolicy /aws/lambda/ingest-handler",
    ]
    report = result.report or {}
    assert len(report["declined"]) == 3 and len(report["applied"]) == 3
    assert {check["id"] for check in report["verification"]["checks"]} == set(THREE)


def test_untick_all_and_approve_is_refused_and_nothing_is_applied(context: Any) -> None:
    run = BrowserRun(everything())
    (link,) = run.links()
    page = context.new_page()
    page.goto(link)
    tick_only(page, [])
    page.click("#approve")
    # THEN the page says nothing was approved, and the playbook still waits
    assert "nothing was approved" in page.inner_text("#result")
    assert not run.finished.is_set()
    # WHEN the approver goes back to the link and rejects instead
    page.goto(link)
    assert page.inner_text("#status") == "pending"
    page.click("#reject")
    result = run.result()
    assert result.outcome == "rejected" and result.mutations == []


def test_two_approvers_with_different_choices_apply_only_what_both_ticked(context: Any) -> None:
    run = BrowserRun(everything(), parameters={"ApproverEmails": "ana@example.com,ben@example.com", "RequiredApprovals": "2"})
    ana_link, ben_link = run.links(2)
    ana, ben = context.new_page(), context.new_page()
    ana.goto(ana_link)
    tick_only(ana, [SIX[0], SIX[1], SIX[4]])
    ana.click("#approve")
    assert "1 of 2" in ana.inner_text("#result")
    ben.goto(ben_link)
    assert "ana@example.com approve" in ben.inner_text("#audit")
    tick_only(ben, [SIX[1], SIX[4], SIX[5]])
    ben.click("#approve")
    assert "the plan is approved" in ben.inner_text("#result")
    result = run.result()
    assert result.mutations == ["dynamodb:UpdateTable etl-metadata", "cloudwatchlogs:PutRetentionPolicy /aws/lambda/ingest-handler"]
    assert (result.report or {})["approvedBy"] == ["ana@example.com", "ben@example.com"]


def test_an_expired_link_is_read_only_and_a_late_press_changes_nothing(context: Any) -> None:
    # GIVEN the approval page, opened while the request is open
    run = BrowserRun(scenario.load("lambda-throttling", "throttled"))
    (link,) = run.links()
    late, fresh = context.new_page(), context.new_page()
    late.goto(link)
    assert late.inner_text("#status") == "pending"
    # WHEN the approval time passes on the account's clock (nothing waits for it in real time, so this holds at any
    # speed) and the playbook's wait for the decision times out
    run.let_the_approval_time_pass()
    assert run.finished.wait(timeout=120), "the approval did not time out"
    # THEN pressing Approve on the page opened in time is refused as too late
    late.click("#approve")
    assert "This approval request expired at" in late.inner_text("#result")
    fresh.goto(link)
    assert_read_only(fresh, "expired")
    result = run.result()
    assert result.outcome == "expired" and result.mutations == []
