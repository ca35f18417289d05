"""`make mutate` counts what it says: mutmut mutates exactly the targets' files, and every counted function exists.

A function renamed without updating the targets would silently leave the count; a file left out of mutmut's
configuration would report 0 mutants as if nothing could be changed.
"""

from __future__ import annotations

import ast
import tomllib

import pytest

from playbooks import mutation, project


def test_mutmut_mutates_exactly_the_targets_files() -> None:
    config = tomllib.loads((project.ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert sorted(config["only_mutate"]) == sorted(target.path for target in mutation.TARGETS)


@pytest.mark.parametrize("target", mutation.TARGETS, ids=lambda target: target.path)
def test_every_counted_function_exists(target: mutation.Target) -> None:
    tree = ast.parse((project.ROOT / target.path).read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(target.functions) <= defined


def test_a_mutant_is_counted_for_its_own_function_only() -> None:
    throttling = next(target for target in mutation.TARGETS if target.module == "lambda_throttling")
    assert mutation.counted(throttling, "lambda_throttling.x_plan__mutmut_3")
    assert mutation.counted(throttling, "lambda_throttling.x__raise_reservation__mutmut_12")
    assert not mutation.counted(throttling, "lambda_throttling.x_plan_handler__mutmut_1")
    assert not mutation.counted(throttling, "lambda_throttling.x_verify__mutmut_1")
    assert not mutation.counted(throttling, "approvals.x_plan__mutmut_1")


def test_the_gate_fails_below_ninety_percent() -> None:
    table = "| `a.py` | x | 10 | 9 | 1 | 0 | 90.0% |\n| `b.py` | y | 10 | 8 | 2 | 0 | 80.0% |\n"
    assert mutation.shares(table) == [90.0, 80.0]
    assert min(mutation.shares(table)) < mutation.MINIMUM_KILLED <= 90.0


def test_the_guards_sample_is_fixed_leaves_out_equivalent_mutants_and_survives_renumbering() -> None:
    equivalent = next(iter(mutation.EQUIVALENT))
    lines = {f"playbooks.safety.x_mutations__mutmut_{n}": f"line {n}" for n in range(1, 80)}
    lines["playbooks.safety.x_mutations__mutmut_80"] = equivalent
    chosen = mutation.sample(lines)
    assert len(chosen) == mutation.GUARD_SAMPLE == 50
    assert chosen == mutation.sample(dict(reversed(lines.items())))
    assert "playbooks.safety.x_mutations__mutmut_80" not in chosen
    # a mutant added before the others shifts every number by one; the sample still holds the same mutated lines
    shifted = {
        f"playbooks.safety.x_mutations__mutmut_{n + 1}": line for n, line in ((int(k.rsplit("_", 1)[1]), v) for k, v in lines.items())
    }
    assert sorted(lines[name] for name in chosen) == sorted(shifted[name] for name in mutation.sample(shifted))


def test_the_guard_samples_the_gate_proof_and_the_change_classification_over_tests_that_exist() -> None:
    assert [target.path for target in mutation.GUARD_TARGETS] == ["src/playbooks/validate.py", "src/playbooks/safety.py"]
    for argument in mutation.GUARD_TESTS:
        path = argument.removeprefix("--deselect=").split("::")[0]
        assert (project.ROOT / path).is_file(), argument


def _mutmut_reports(monkeypatch: pytest.MonkeyPatch, *last: str) -> None:
    """mutmut's report of the guard's sample: every mutant killed but the last, which reads as given."""
    killed = [f"GUARD killed playbooks.safety.x_mutations__mutmut_{n} line {n}" for n in range(1, mutation.GUARD_SAMPLE)]
    monkeypatch.setattr(mutation, "_mutmut_guard", lambda: "\n".join([*killed, *last]) + "\n")
    monkeypatch.setattr(mutation.shutil, "rmtree", lambda *args, **kwargs: None)  # the tree's mutants/ stays as it is


@pytest.mark.parametrize(
    ("status", "passes"), [("killed", True), ("timeout", True), ("survived", False), ("not run", False), ("suspicious", False)]
)
def test_the_guard_fails_on_a_mutant_its_tests_did_not_detect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], status: str, passes: bool
) -> None:
    # GIVEN a sample whose last mutant ended with the given status
    _mutmut_reports(monkeypatch, f"GUARD {status} playbooks.validate.x_gate__mutmut_7 the mutated line")
    # WHEN the guard reads it
    code = mutation.guard()
    # THEN a killed or timed-out mutant passes, and one that survived or was not run fails, named with its line
    output = capsys.readouterr().out
    assert code == (0 if passes else 1)
    assert ("x_gate__mutmut_7" in output) is not passes
    assert ("the mutated line" in output) is not passes


def test_the_guard_fails_when_mutmut_reports_fewer_mutants_than_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a sample one mutant short, WHEN the guard reads it, THEN it fails
    _mutmut_reports(monkeypatch)
    assert mutation.guard() == 1
