"""README.md is what a new user follows: its tables render, its links lead somewhere, and what it tells them to type
exists (make targets, `playbooks` commands and their options, files), and its quoted demo is the recording's."""

from __future__ import annotations

import itertools
import re

import pytest
import typer

from playbooks import project
from playbooks.cli import app

README = project.ROOT / "README.md"
TEXT = README.read_text()
CODE_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
PROSE = CODE_BLOCK.sub("", TEXT)


def _cells(row: str) -> list[str]:
    """A table row's cells; a `|` inside backticks is text, not a border."""
    outside = re.sub(r"`[^`]*`", lambda m: "x" * len(m.group()), row.strip())
    borders = [i for i, c in enumerate(outside) if c == "|"]
    return [row.strip()[a + 1 : b].strip() for a, b in itertools.pairwise(borders)]


def _tables() -> list[list[str]]:
    tables, current = [], []
    for line in [*PROSE.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _quoted_commands() -> list[str]:
    commands = [line.strip() for block in CODE_BLOCK.findall(TEXT) for line in block.splitlines()]
    commands += re.findall(r"`([^`\n]+)`", PROSE)
    joined = [re.sub(r"\s+#.*$", "", c).rstrip("\\ ").strip() for c in commands]
    return [c for c in joined if re.match(r"^(make|playbooks) [a-z]", c)]


def test_there_are_tables_and_commands_to_check() -> None:
    assert len(_tables()) >= 5 and len(_quoted_commands()) >= 10


@pytest.mark.parametrize("table", _tables(), ids=lambda t: t[0][:40])
def test_every_table_is_well_formed(table: list[str]) -> None:
    header, separator, *rows = table
    width = len(_cells(header))
    assert width >= 2 and all(re.fullmatch(r":?-{3,}:?", cell) for cell in _cells(separator)) and len(_cells(separator)) == width
    assert rows, "a table without rows"
    assert [row for row in rows if len(_cells(row)) != width] == []


def test_every_relative_link_and_anchor_exists() -> None:
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", PROSE, re.M)}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", PROSE):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if target.startswith("#"):
            broken += [target] if target[1:] not in anchors else []
        elif not (project.ROOT / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("command", sorted(set(_quoted_commands())))
def test_every_quoted_command_exists(command: str) -> None:
    words = command.split()
    if words[0] == "make":
        targets = set(re.findall(r"^([a-z][a-z-]*):", (project.ROOT / "Makefile").read_text(), re.M))
        assert set(words[1:]) <= targets, f"no make target for {command!r}"
        return
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    sub = group.commands.get(words[1])
    assert sub is not None, f"no command {words[1]!r}"
    options = {opt for param in sub.params for opt in param.opts}
    assert [w for w in re.findall(r"--[a-z-]+", command) if w not in options] == [], command
    for path in re.findall(r"\b((?:events|scenarios|schemas|docs)/[\w./-]+\.(?:json|yaml|md))", command):
        assert (project.ROOT / path).exists(), path


def test_the_quoted_demo_is_the_recording() -> None:
    # The first block after "make demo ... The first one:" is quoted from docs/demo.txt, word for word.
    quoted = TEXT.split("The first one:\n\n```\n", 1)[1].split("```", 1)[0]
    assert quoted in (project.ROOT / "docs" / "demo.txt").read_text()


def test_no_leftovers_of_planned_playbooks() -> None:
    assert "planned as playbooks" not in TEXT
    assert len(re.findall(r"^\| \[`[a-z-]+`\]\(docs/playbooks/", TEXT, re.M)) == len(project.playbooks())
