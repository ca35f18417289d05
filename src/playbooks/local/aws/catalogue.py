"""Every gap between moto and AWS that the local account fills, by service, and the page that lists them."""

from __future__ import annotations

from dataclasses import dataclass
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
from .runtime import Gap, Source, cite

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


@dataclass(frozen=True)
class Fact:
    """AWS behaviour a playbook's design relies on that no module emulates (there is no gap to fill), with its source."""

    fact: str
    use: str
    sources: tuple[Source, ...]


FACTS = [
    Fact(
        "A Retry or Catch matches a Task's error by its name only (ErrorEquals, case-sensitive); nothing in ASL matches "
        "the Cause. An aws-sdk Task's errors are named `<Service>.<Error>Exception`.",
        "access-denied catches `S3.S3Exception` and `Kms.KmsException` by name and lets a Choice read the Cause: "
        "'Is the bucket without a policy?' matches `(Service: S3, Status Code: 404,`, 'Was the key policy read denied?' "
        "matches `is not authorized to perform: kms:GetKeyPolicy`",
        (
            Source(
                "AWS Step Functions developer guide, Handling errors in Step Functions workflows",
                "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
            ),
            Source(
                "AWS Step Functions developer guide, Learning to use AWS service SDK integrations in Step Functions",
                "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
            ),
        ),
    ),
    Fact(
        "An S3 Intelligent-Tiering *configuration* only moves objects already in the INTELLIGENT_TIERING storage class to "
        "its archive tiers; objects in S3 Standard get into that class by a PUT in it or by a lifecycle transition.",
        "cost-spike proposes a lifecycle rule that transitions the bucket's objects to INTELLIGENT_TIERING, keeping the "
        "bucket's other lifecycle rules, never a tiering configuration, and verifies the rule",
        (
            Source(
                "Amazon S3 API reference, PutBucketIntelligentTieringConfiguration",
                "https://docs.aws.amazon.com/goto/WebAPI/s3/PutBucketIntelligentTieringConfiguration",
            ),
            Source(
                "Amazon S3 user guide, Using S3 Intelligent-Tiering (moving data to S3 Intelligent-Tiering)",
                "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-intelligent-tiering.html",
            ),
        ),
    ),
    Fact(
        "S3 publishes a bucket's storage metrics (BucketSizeBytes, NumberOfObjects) to CloudWatch once a day.",
        "cost-spike reads them over the last three days with a one-day period and, with no object count published yet, "
        "prices no Intelligent-Tiering saving (its monitoring fee is per object)",
        (
            Source(
                "Amazon S3 user guide, Metrics and dimensions (daily storage metrics for buckets in CloudWatch)",
                "https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html",
            ),
        ),
    ),
]


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

    facts = [
        "",
        "## What the playbooks rely on, and where AWS says so",
        "",
        "AWS behaviour no module above emulates (the local account has nothing to fill) but a playbook's design depends on.",
        "",
        "| fact | what the playbook does with it | sources |",
        "| --- | --- | --- |",
    ]
    facts += [f"| {fact.fact} | {fact.use} | {cite(fact.sources)} |" for fact in FACTS]
    return "\n".join(lines + authorization.render_doc() + facts) + "\n"
