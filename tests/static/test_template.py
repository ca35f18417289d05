"""The SAM template: both approval API variants, least-privilege grants on the throttling playbook."""

from __future__ import annotations

import json

from playbooks.local.account import translate


def test_iam_variant_signs_every_approval_method() -> None:
    translated = translate({"ApprovalApiAuth": "AWS_IAM"})
    api = translated["Resources"]["ApprovalIamApi"]
    assert api["Condition"] == "UseIamApprovalApi"
    body = json.dumps(api["Properties"]["Body"]["paths"])
    # GET, HEAD and POST: each integration carries the IAM requirement
    assert body.count("x-amazon-apigateway-integration") == 3
    assert body.count('"security": [{"AWS_IAM": []}]') == 3
    # the open variant's API and page exist only under the other condition
    assert translated["Resources"]["ApprovalApi"]["Condition"] == "UseOpenApprovalApi"
    assert translated["Resources"]["ApprovalWebFunction"]["Condition"] == "UseOpenApprovalApi"


def test_no_wildcard_actions_and_no_full_access() -> None:
    text = json.dumps(translate({}))
    assert "FullAccess" not in text
    for resource in translate({})["Resources"].values():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], statement
