"""Every strictness rule of the local account names the pages that say what AWS does (docs/local-account.md shows them)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from playbooks.local.aws import authorization, catalogue
from playbooks.local.aws.runtime import NO_AWS_BEHAVIOUR, Gap, Source

# AWS's documentation, its SDK references, and recordings of AWS's answers in public projects' tests.
CITABLE_HOSTS = {"docs.aws.amazon.com", "aws.amazon.com", "github.com", "www.powershellgallery.com", "metacpan.org"}


def emulates_nothing(gap: Gap) -> bool:
    return "(speed only)" in gap.api or gap.moto.startswith("(world building)")


def uncited(gap: Gap) -> list[str]:
    """What is wrong with the gap's sources (nothing: it cites AWS's behaviour, or says it emulates none)."""
    if not gap.sources:
        return [] if emulates_nothing(gap) else ["cites no source"]
    return [problem for source in gap.sources for problem in bad_source(source)]


def bad_source(source: Source) -> list[str]:
    address = urlparse(source.url)
    problems = []
    if not source.title.strip():
        problems.append(f"{source.url}: no title")
    if address.scheme != "https" or address.netloc not in CITABLE_HOSTS:
        problems.append(f"{source.url}: not an address of AWS's documentation or of a public recording")
    if "|" in source.title or "]" in source.title:
        problems.append(f"{source.title}: breaks the Markdown table")
    return problems


@pytest.mark.parametrize("gap", catalogue.GAPS, ids=lambda gap: gap.api[:60])
def test_every_gap_cites_where_aws_says_so(gap: Gap) -> None:
    # GIVEN a gap the local account fills
    # THEN it names the page(s) that say what AWS does, or is marked as emulating nothing AWS does
    assert not uncited(gap)


@pytest.mark.parametrize("rule", authorization.RULES, ids=lambda rule: rule.rule[:60])
def test_every_authorization_rule_cites_where_aws_says_so(rule: authorization.Rule) -> None:
    assert rule.sources and not [problem for source in rule.sources for problem in bad_source(source)]


@pytest.mark.parametrize(
    ("gap", "why"),
    [
        (Gap("s3:GetObject", "answers 403", "answers 404", sources=NO_AWS_BEHAVIOUR), "cites no source"),
        (Gap("s3:GetObject", "answers 403", "answers 404", sources=(Source("", "https://docs.aws.amazon.com/x"),)), "no title"),
        (Gap("s3:GetObject", "answers 403", "answers 404", sources=(Source("A blog", "https://example.invalid/x"),)), "not an address"),
    ],
)
def test_a_gap_without_a_real_source_is_reported(gap: Gap, why: str) -> None:
    # GIVEN a gap that emulates AWS but cites nothing usable
    # THEN the check reports it (so a row added without a source fails the test above)
    assert any(why in problem for problem in uncited(gap))


def test_a_gap_cannot_be_declared_without_sources() -> None:
    with pytest.raises(TypeError):
        Gap("s3:GetObject", "answers 403", "answers 404")  # type: ignore[call-arg]


def test_the_page_shows_every_source() -> None:
    page = catalogue.render_doc()
    for gap in catalogue.GAPS:
        for source in gap.sources:
            assert f"[{source.title}]({source.url})" in page


@pytest.mark.parametrize("fact", catalogue.FACTS, ids=lambda fact: fact.fact[:60])
def test_every_fact_a_playbook_relies_on_cites_where_aws_says_so(fact: catalogue.Fact) -> None:
    assert fact.sources and not [problem for source in fact.sources for problem in bad_source(source)]
