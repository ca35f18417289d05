"""Two independent ASL validators over every state machine, substitutions filled: `statelint` (PyPI, a port of
awslabs/statelint) and `asl-validator` (npm, the ASL JSON schema plus JSONPath checks). `make asl-lint` runs them;
`make test` depends on it."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from . import project

ASL_VALIDATOR = project.ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "asl-validator"
STATELINT = Path(sys.executable).parent / "statelint"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
ACCOUNT_ARN = "arn:aws:{service}:us-east-1:123456789012:{kind}:{name}"


def substitution_value(name: str) -> str:
    """A value of the kind CloudFormation would put in: a function ARN for a `...FunctionArn`, else a plain name."""
    if name.endswith("FunctionArn"):
        return ACCOUNT_ARN.format(service="lambda", kind="function", name=name.removesuffix("Arn"))
    if name.endswith("Arn"):
        return ACCOUNT_ARN.format(service="states", kind="stateMachine", name=name.removesuffix("Arn"))
    return f"etl-playbooks-{name}"


def filled(playbook: project.Playbook) -> str:
    """The playbook's ASL as deployed: every `${...}` replaced by a value of its kind."""
    return PLACEHOLDER.sub(lambda match: substitution_value(match.group(1)), playbook.asl_path.read_text())


def complaints(definition: str) -> dict[str, list[str]]:
    """What each validator says about one ASL document (an empty list: it passes)."""
    found: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "definition.asl.json"
        path.write_text(definition)
        for name, command in (
            # FLOAT: statelint wants BackoffRate written as 2.0; JSON has one number type and Step Functions takes 2
            ("statelint", [str(STATELINT), "--ignore=FLOAT", str(path)]),
            ("asl-validator", [str(ASL_VALIDATOR), "--json-path", str(path)]),
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own tools
            output = (done.stdout + done.stderr).strip() or f"exit {done.returncode}"
            found[name] = output.splitlines() if done.returncode != 0 else []
    return found


def run() -> list[str]:
    """Each validator's complaints about each playbook, as "playbook (validator): message" lines."""
    return [
        f"{playbook.id} ({name}): {line}"
        for playbook in project.state_machines().values()
        for name, lines in complaints(filled(playbook)).items()
        for line in lines
    ]


def main() -> None:
    problems = run()
    for line in problems:
        print(line)
    print(f"asl-lint: {len(project.state_machines())} state machines, statelint and asl-validator: {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
