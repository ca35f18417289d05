"""The assurance gate fails on each kind of regression it guards (checked on made-up results, in milliseconds)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from playbooks import assure, project

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
        results["runs"].append(run(first, "throttled", "persistent", problems=["the lock was not released"]))
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
