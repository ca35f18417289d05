"""The assurance gate fails on each kind of regression it guards (checked on made-up results, in milliseconds)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from playbooks import assure, project, scenario

PLAYBOOKS = list(project.playbooks())


def run(playbook: str, scenario: str, kind: str = "baseline", **changes: Any) -> assure.Run:
    fields: dict[str, Any] = dict(
        playbook=playbook,
        scenario=scenario,
        kind=kind,
        state=None,
        status="SUCCEEDED",
        outcome="remediated",
        mutations=[],
        edges=[],
        states=[],
        calls=[],
        texts=[],
        secrets=[],
        lock_released=True,
        emails=[],
        deployed=[],
    )
    return assure.Run(**(fields | changes))


def clean() -> dict[str, Any]:
    return {
        "runs": [run(p, "stale-lock") for p in PLAYBOOKS],
        "least_privilege": {
            "SomeFunction": {
                "called": ["s3:GetObject"],
                "missing": [],
                "excess": [],
                "star": [],
                "wildcards": [],
                "untouched": [],
                "patterns": [{"action": "s3:GetObject", "resource": "arn:aws:s3:::b/*", "reason": "why", "touched": ["arn:aws:s3:::b/k"]}],
            }
        },
        "secrets": [],
        "coverage": {
            p: {"states": (10, 10), "transitions": (10, 10), "untested_states": [], "untested_transitions": []} for p in PLAYBOOKS
        },
        "concurrency": [{"playbook": p, "runs": 2, "outcomes": ["already-running", "remediated"]} for p in PLAYBOOKS],
        "bad_input": [
            {
                "playbook": p,
                "tried": 5,
                "refused": 5,
                "most_states": 2,
                "slowest_s": 0.1,
                "unrelated_events": 3,
                "unrelated_ignored": 3,
                "problems": [],
            }
            for p in PLAYBOOKS
        ],
        "brake": [{"playbook": p, "scenario": "throttled", "outcomes": ["paused"], "mutations": [], "approvals": 0} for p in PLAYBOOKS],
        "persisting_loop": {
            "playbook": "event-loop",
            "starts": 5000,
            "status": "SUCCEEDED",
            "outcome": "escalated",
            "states": ["Check that the loop stopped", "Disable the rule again"],
            "reported": True,
            "lock_released": True,
            "rule": "DISABLED",
        },
        "scanners": {
            "cfn-lint": {"template.yaml": []},
            "checkov": {"template.yaml": {"failed": []}},
            "checkov_skips": {"CKV_AWS_1": "why"},
        },
    }


def test_clean_results_pass() -> None:
    assert assure.failures(clean()) == []


def regress(results: dict[str, Any], what: str) -> None:
    role = results["least_privilege"]["SomeFunction"]
    first = PLAYBOOKS[0]
    if what == "privilege":
        role["missing"] = ["s3:PutObject"]
    elif what == "star":
        role["star"] = ["s3:GetObject"]
    elif what == "wildcard":
        role["wildcards"] = ["s3:*"]
    elif what == "unexplained pattern":
        role["patterns"][0]["reason"] = None
    elif what == "secret":
        results["secrets"] = ["lambda-throttling/throttled: AAAA... in 'log line'"]
    elif what == "coverage":
        results["coverage"][first]["transitions"] = (8, 10)
    elif what == "concurrency":
        results["concurrency"][0]["outcomes"] = ["remediated", "remediated"]
    elif what == "bad input":
        results["bad_input"][0]["problems"] = ["input = 7: ended FAILED States.Runtime, not refused"]
    elif what == "stale lock":
        results["runs"] = results["runs"][1:]
    elif what == "fault":
        results["runs"].append(run(first, "throttled", "persistent", problems=["no report was sent"]))
    elif what == "large payload":
        results["runs"].append(run(first, "throttled", assure.LARGE_PAYLOAD, problems=["large inputs changed the result"]))
    elif what == "cfn-lint":
        results["scanners"]["cfn-lint"]["template.yaml"] = ["E3012 line 4: wrong type"]
    elif what == "checkov":
        results["scanners"]["checkov"]["template.yaml"] = {"failed": ["CKV_AWS_45 Fn: no"]}
    elif what == "checkov missing":
        results["scanners"]["checkov"]["template.yaml"] = {"error": "checkov is not installed"}
    elif what == "unexplained skip":
        results["scanners"]["checkov_skips"]["CKV_AWS_2"] = ""
    elif what == "brake ignored":
        results["brake"][0] |= {"outcomes": ["remediated"], "mutations": ["lambda:PutFunctionConcurrency ingest-handler"], "approvals": 1}
    elif what == "brake asked":
        results["brake"][0] |= {"approvals": 1}
    elif what == "persisting loop left the rule enabled":
        results["persisting_loop"] |= {
            "status": "FAILED",
            "outcome": "failed",
            "states": ["Check that the loop stopped"],
            "rule": "ENABLED",
        }
    elif what == "persisting loop sent no report":
        results["persisting_loop"]["reported"] = False
    elif what == "persisting loop held its lock":
        results["persisting_loop"]["lock_released"] = False
    elif what == "persisting loop not run":
        del results["persisting_loop"]


@pytest.mark.parametrize(
    "what",
    [
        "privilege",
        "star",
        "wildcard",
        "unexplained pattern",
        "secret",
        "coverage",
        "concurrency",
        "bad input",
        "stale lock",
        "fault",
        "large payload",
        "cfn-lint",
        "checkov",
        "checkov missing",
        "unexplained skip",
        "brake ignored",
        "brake asked",
        "persisting loop left the rule enabled",
        "persisting loop sent no report",
        "persisting loop held its lock",
        "persisting loop not run",
    ],
)
def test_each_regression_fails_the_gate(what: str) -> None:
    results = copy.deepcopy(clean())
    regress(results, what)
    assert len(assure.failures(results)) == 1


def test_the_page_says_what_regressed() -> None:
    results = clean()
    regress(results, "bad input")
    assert "input = 7: ended FAILED States.Runtime, not refused" in assure.render(results)


def test_the_page_lists_a_scenario_that_ignored_the_brake() -> None:
    results = clean()
    regress(results, "brake ignored")
    page = assure.render(results)
    assert "1 changed something or asked for approval" in page
    assert "changed ['lambda:PutFunctionConcurrency ingest-handler'], 1 approvals" in page


def test_the_page_reports_a_persisting_loop_that_left_the_rule_enabled() -> None:
    results = clean()
    regress(results, "persisting loop left the rule enabled")
    page = assure.render(results)
    section = page.split("## Persisting loop\n", 1)[1].split("\n## ", 1)[0]
    assert "ended failed through Check that the loop stopped" in section and "rule ENABLED" in section
    assert "the looping rule was left ENABLED" in section


def test_a_grant_on_a_resource_no_call_touched_is_reported() -> None:
    results = clean()
    results["least_privilege"]["SomeFunction"]["untouched"] = ["s3:GetObject on arn:aws:s3:::other-bucket/*"]
    assert "s3:GetObject on arn:aws:s3:::other-bucket/*" in assure.render(results)


def test_least_privilege_is_resource_level() -> None:
    # GIVEN a role granted GetObject on two buckets' objects and ListBucket on one bucket, that read one bucket only
    grants = {
        "SomeFunction": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::raw/*", "arn:aws:s3:::processed/*"]},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::processed"},
            {"Effect": "Allow", "Action": "kms:GetKeyPolicy", "Resource": "arn:aws:kms:us-east-1:123456789012:key/*"},
        ]
    }
    touched = [
        ("SomeFunction", "s3:GetObject", "arn:aws:s3:::processed/out/a.csv"),
        ("SomeFunction", "s3:ListBucket", "arn:aws:s3:::processed"),
        ("SomeFunction", "kms:GetKeyPolicy", "arn:aws:kms:us-east-1:123456789012:key/k"),
    ]
    runs = [run(PLAYBOOKS[0], "s", touched=touched, grants=grants, deployed=["SomeFunction"])]
    # WHEN least privilege is judged
    row = assure.least_privilege(runs)["SomeFunction"]
    # THEN the grant broader than what was touched is reported, though its action was called
    assert row["excess"] == []
    assert row["untouched"] == ["s3:GetObject on arn:aws:s3:::raw/*"]
    # AND a key pattern without the condition that scopes it has no reason
    reasons = {p["resource"]: p["reason"] for p in row["patterns"]}
    assert reasons["arn:aws:kms:us-east-1:123456789012:key/*"] is None
    assert reasons["arn:aws:s3:::processed/*"]


RETRY = "sfn:StopExecution arn:aws:states:us-east-1:123456789012:execution:etl-workflow:retry-{}-ddc4d028"


def test_an_execution_the_run_started_compares_by_what_changed_not_by_its_clock_made_name() -> None:
    # GIVEN a baseline that started and then stopped retry-1000-..., and a faulted run of it one minute later
    baseline = run("execution-stuck", "retry-hangs", mutations=[RETRY.format(1000)], started=["retry-1000-ddc4d028"])
    later = run("execution-stuck", "retry-hangs", "transient", mutations=[RETRY.format(1060)], started=["retry-1060-ddc4d028"])
    # AND one that stopped an execution it did not start (a pipeline run of that name)
    other = run("execution-stuck", "retry-hangs", "transient", mutations=[RETRY.format(1060)], started=[])
    # WHEN the gate judges them
    assure.judge([baseline, later, other])
    # THEN the name the clock chose is no difference, and stopping another execution is
    assert later.problems == []
    assert [p.split(":")[0] for p in other.problems] == ["transient faults changed the result"]


@pytest.mark.parametrize("kind", ["baseline", "pagination", "transient", "persistent", assure.LARGE_PAYLOAD])
def test_a_run_of_any_pass_that_ends_holding_its_lock_fails_the_gate(kind: str) -> None:
    # GIVEN a run of any pass that ended with its own lock still held (a run that died uncaught, say)
    failed = {"status": "FAILED", "emails": ["[failed] execution-stuck"]} if kind == "persistent" else {}
    held = run("execution-stuck", "lambda-timeout", kind, state="Stop the stuck execution", lock_released=False, **failed)
    results = clean()
    results["runs"] += [run("execution-stuck", "lambda-timeout"), held]
    # WHEN the runs are judged
    assure.judge(results["runs"])
    # THEN that run has a problem and the gate fails on it
    assert held.problems == ["ended holding its lock"]
    assert assure.failures(results) == [f"execution-stuck/lambda-timeout {kind} Stop the stuck execution: ended holding its lock"]


def test_a_run_that_sent_no_report_fails_the_gate_unless_the_report_itself_was_faulted() -> None:
    stuck = "arn:aws:states:us-east-1:123456789012:execution:ExecutionStuck:stuck-abc"
    died = run("execution-stuck", "lambda-timeout", assure.LARGE_PAYLOAD, unreported=[stuck])
    faulted = run("execution-stuck", "lambda-timeout", "persistent", state="Send the report", status="FAILED", unreported=[stuck])
    assure.judge([run("execution-stuck", "lambda-timeout"), died, faulted])
    assert died.problems == ["stuck-abc ended without a report"]
    assert "stuck-abc ended without a report" not in faulted.problems
    # AND a persistent fault on the release leaves the lock to expire on its own
    released = run("execution-stuck", "lambda-timeout", "persistent", state="Release the playbook lock", lock_released=False)
    assure.judge([run("execution-stuck", "lambda-timeout"), released])
    assert released.problems == []


def test_the_page_lists_the_large_payload_pass() -> None:
    results = clean()
    results["runs"] += [
        run("execution-stuck", "lambda-timeout", assure.LARGE_PAYLOAD),
        run("execution-stuck", "oom-killed", assure.LARGE_PAYLOAD, problems=["oom-killed-run ended without a report"]),
    ]
    page = assure.render(results)
    assert "- execution-stuck: 2 scenarios with ~200 KB pipeline inputs, 1 with the baseline's outcome and changes" in page
    assert "  - oom-killed: oom-killed-run ended without a report" in page


def test_large_inputs_pad_every_pipeline_execution_of_the_scenario() -> None:
    loaded = assure.with_large_inputs(scenario.load("execution-stuck", "watchdog-alarm"))
    assert {e["inputPaddingKb"] for e in loaded.data["world"]["executions"]} == {assure.LARGE_INPUT_KB}
    jobs = assure.large_payload_jobs(
        [("execution-stuck", "lambda-timeout", "baseline", None, []), ("lambda-throttling", "throttled", "baseline", None, [])]
    )
    assert jobs == [("execution-stuck", "lambda-timeout", assure.LARGE_PAYLOAD, None, [])]


def test_large_payload_runs_compare_changes_without_the_retry_times() -> None:
    stop = "sfn:StopExecution arn:aws:states:us-east-1:123456789012:execution:etl-workflow:retry-{}-ddc4d028"
    baseline = run("execution-stuck", "retry-hangs", mutations=[stop.format(1796138860)])
    later = run("execution-stuck", "retry-hangs", assure.LARGE_PAYLOAD, mutations=[stop.format(1796138975)])
    other = run("execution-stuck", "retry-hangs", assure.LARGE_PAYLOAD, mutations=[])
    assure.judge([baseline, later, other])
    assert later.problems == []
    assert other.problems and other.problems[0].startswith("large inputs changed the result")


def test_access_denied_runs_with_large_inputs_where_it_restarts_a_failed_run() -> None:
    jobs = assure.large_payload_jobs(
        [("access-denied", "missing-dynamodb-put", "baseline", None, []), ("access-denied", "dry-run", "baseline", None, [])]
    )
    assert jobs == [("access-denied", "missing-dynamodb-put", assure.LARGE_PAYLOAD, None, [])]
    assert "not run yet" not in assure.render(clean())


def test_no_gate_fault_is_aimed_at_a_call_the_scenario_itself_fails() -> None:
    # GIVEN event-loop's scenario whose own fault denies every call of "Disable the rule after the failure", and one
    # that reaches the same state with that call succeeding
    states = ["Re-enable the rule", "Check that the loop stopped", "Disable the rule after the failure"]
    denied = run("event-loop", "check-and-disable-fail", status="FAILED", outcome="failed", states=states)
    allowed = run("event-loop", "check-fails-rule-disabled-again", status="SUCCEEDED", outcome="escalated", states=states)
    # WHEN the fault matrix is planned from them
    jobs = assure.plan_jobs([denied, allowed])
    aimed = {(s, kind): [f.state for f in faults] for _, s, kind, _, faults in jobs if kind == "transient"}
    persistent = {state: s for _, s, kind, state, _ in jobs if kind == "persistent"}
    # THEN the denied scenario's transient faults skip that state (a gate fault there would never meet its call), and
    # the persistent fault on it runs in the scenario where the call really happens
    assert "Disable the rule after the failure" not in aimed[("check-and-disable-fail", "transient")]
    assert "Disable the rule after the failure" in aimed[("check-fails-rule-disabled-again", "transient")]
    assert persistent["Disable the rule after the failure"] == "check-fails-rule-disabled-again"


def test_a_call_told_apart_by_its_cause_is_faulted_on_both_branches() -> None:
    # GIVEN a baseline run that reads the key policy (KMS names no denial: its errors go to a Choice on the Cause)
    states = ["Read the key policy", "Was the key policy read denied?"]
    reads = run("access-denied", "key-policy-not-delegated", states=states)
    # WHEN the fault matrix is planned from it
    jobs = assure.plan_jobs([reads])
    aimed = {(kind, state): [(f.state, f.error, f.status) for f in faults] for _, _, kind, state, faults in jobs}
    # THEN the persistent fault meets the "(retry)" copy too, and a persistent denial is planned (as KMS answers one)
    assert [s for s, _, _ in aimed[("persistent", "Read the key policy")]] == ["Read the key policy", "Read the key policy (retry)"]
    assert aimed[("denial", "Read the key policy")] == [("Read the key policy", "AccessDeniedException", 400)]


def test_a_denial_asked_twice_fails_the_gate() -> None:
    # GIVEN a denial run whose fault met two calls in one entry of the state (the denial was retried), and one whose
    # fault met one call in each of two entries (a Map item each)
    results = clean()
    state = "Read the key policy"
    retried = run("access-denied", "stale-lock", kind="denial", state=state, states=[state], faults=2, emails=["report"])
    per_item = run("cost-spike", "stale-lock", kind="denial", state="Enable S3 Intelligent-Tiering", emails=["report"])
    per_item.states, per_item.faults = [per_item.state, "Record the failed change"] * 2, 2
    results["runs"] += [retried, per_item]
    assure.judge(results["runs"])
    # THEN the gate fails for the retried denial only, and says why
    assert retried.problems == ["the denial was asked 2 times in 1 entries of the state"]
    assert not per_item.problems
    assert any("the denial was asked 2 times" in f for f in assure.failures(results))


def test_the_states_that_read_a_next_page_are_faulted_under_small_pages() -> None:
    # GIVEN execution-stuck's full-page run, which reads one page of history, and its small-pages run, which reads on
    first, following = "Read the execution's recent history", "Read the next page of history"
    full = run("execution-stuck", "lambda-timeout", states=[first, "Find the stuck state"])
    paged = run("execution-stuck", "lambda-timeout", kind="pagination", states=[first, following, "Find the stuck state"])
    # WHEN the faults are planned from the small-pages runs, beside what the full-page runs were already faulted in
    jobs = assure.plan_jobs([paged], assure.entered_states([full]), assure.SMALL_PAGES)
    aimed = {(kind, state): [f.state for f in faults] for _, _, kind, state, faults in jobs}
    # THEN only the next-page read is faulted, every way (once, always, denied), each job with small pages
    assert aimed == {
        ("transient" + assure.SMALL_PAGES, None): [following],
        ("persistent" + assure.SMALL_PAGES, following): [following, f"{following} (retry)"],
        ("denial" + assure.SMALL_PAGES, following): [following],
    }


def test_a_run_with_nothing_to_fault_is_not_run_again() -> None:
    # GIVEN a run whose only Task's call its own scenario fails (a gate fault there would never meet the call), and a
    # run that entered a Task nothing answers
    denied = run("event-loop", "check-and-disable-fail", status="FAILED", outcome="failed", states=["Disable the rule after the failure"])
    reads = run("event-loop", "check-fails-rule-disabled-again", states=["Disable the rule after the failure"])
    # WHEN the fault matrix is planned from them
    jobs = assure.plan_jobs([denied, reads])
    # THEN only the run with a call to fault is run again with transient faults: the other would repeat its baseline
    assert [(s, [f.state for f in faults]) for _, s, kind, _, faults in jobs if kind == "transient"] == [
        ("check-fails-rule-disabled-again", ["Disable the rule after the failure"])
    ]
