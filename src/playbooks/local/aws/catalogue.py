"""Every gap between moto and AWS that the local account fills, by service, and the page that lists them."""

from __future__ import annotations

from types import ModuleType

from . import (
    asl,
    ce,
    clock,
    cloudformation,
    cloudtrail,
    cloudwatch,
    dynamodb,
    emf,
    events,
    iam,
    integrations,
    kms,
    lambda_,
    logs,
    pagination,
    s3,
    servicequotas,
    sfn,
    sns,
)
from .runtime import Gap, cite

# In the order the page lists them: the executor and integrations first, then each service.
MODULES: list[ModuleType] = [
    asl,
    integrations,
    clock,
    pagination,
    sfn,
    lambda_,
    cloudformation,
    cloudwatch,
    emf,
    logs,
    events,
    s3,
    sns,
    dynamodb,
    iam,
    kms,
    cloudtrail,
    ce,
    servicequotas,
]
GAPS: list[Gap] = [gap for module in MODULES for gap in module.GAPS]


def render_doc() -> str:
    """docs/local-account.md, generated from each service module's GAPS."""
    lines = [
        "# The local account and moto's gaps",
        "",
        "The local account (`src/playbooks/local/`) runs the project's own `template.yaml` and ASL on moto 5.2.5. Where moto",
        "differs from AWS, the package `src/playbooks/local/aws/` makes it behave like AWS, one module per service; no",
        "playbook is changed to suit moto. This page is generated from each module's `GAPS` (`make docs`); a test fails",
        "when it is stale. Each row names the pages that say what AWS does (AWS's documentation, or responses recorded",
        "against AWS in a public project's test snapshots); a test fails when a row cites none.",
    ]
    for module in MODULES:
        if not module.GAPS:
            continue
        name = module.__name__.rsplit(".", 1)[-1]
        lines += [
            "",
            f"## `{name}.py`: {' '.join((module.__doc__ or '').strip().split(chr(10) * 2)[0].split())}",
            "",
            "| API or feature | AWS | moto, and what the local account does | sources |",
            "| --- | --- | --- | --- |",
        ]
        lines += [f"| {gap.api} | {gap.aws} | {gap.moto} | {cite(gap.sources)} |" for gap in module.GAPS]
    from . import authorization

    return "\n".join(lines + authorization.render_doc()) + "\n"
