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


def _rule_holds(expression: object, parameters: dict[str, list[str]]) -> object:
    """The few rule functions the template's Rules use, as CloudFormation evaluates them (a list parameter is its items)."""
    if isinstance(expression, dict):
        ((name, value),) = expression.items()
        if name == "Ref":
            return parameters[value]
        if name == "Fn::Not":
            return not _rule_holds(value[0], parameters)
        if name == "Fn::Contains":
            return _rule_holds(value[1], parameters) in _rule_holds(value[0], parameters)  # type: ignore[operator]
        raise AssertionError(f"rule function {name} not modelled here")
    return expression


def test_a_deploy_without_an_approver_is_refused_before_anything_is_created() -> None:
    from playbooks import project

    template = project.template()
    default = template["Parameters"]["ApproverEmails"]["Default"]
    assertions = [a["Assert"] for rule in template["Rules"].values() for a in rule["Assertions"]]

    def accepted(emails: str) -> bool:
        return all(_rule_holds(a, {"ApproverEmails": emails.split(",")}) for a in assertions)

    assert not accepted(default)
    assert not accepted("ana@example.com,,ben@example.com")
    assert accepted("ana@example.com")
    assert accepted("ana@example.com,ben@example.com")


def test_the_stack_outputs_what_playbooks_start_and_the_readme_name() -> None:
    # `playbooks start` finds each playbook's state machine by this output; the README's outputs table lists them
    from playbooks import project, start

    outputs = project.template()["Outputs"]
    wanted = {start.OUTPUT_KEY.format(logical_id=p.logical_id) for p in project.playbooks().values()}
    assert wanted | {"ApprovalApiUrl", "ApprovalTopicArn", "NotificationTopicArn", "CostAlertTopicArn"} <= set(outputs)
    readme = (project.ROOT / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in outputs)
