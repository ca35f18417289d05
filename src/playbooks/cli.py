"""`playbooks`: list, validate, simulate and start the remediation playbooks. Commands are thin over the modules."""

from __future__ import annotations

import json
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import project

app = typer.Typer(
    help="Incident-remediation playbooks for the serverless ETL pipeline.", no_args_is_help=True, pretty_exceptions_enable=False
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    expire = "expire"
    prompt = "prompt"
    browser = "browser"


def _fail(message: str) -> typer.Exit:
    """A user error: one line on stderr, exit code 2 (1 is kept for "ran, and the checks failed")."""
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


@app.command("list")
def list_playbooks(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the playbooks the template declares, with their scenarios."""
    from . import scenario

    rows: list[dict[str, Any]] = [
        {"id": p.id, "stateMachine": p.logical_id, "description": p.description, "scenarios": [s.name for s in scenario.scenarios(p.id)]}
        for p in project.playbooks().values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("playbook", "state machine", "scenarios", "what it does")
    for row in rows:
        table.add_row(row["id"], row["stateMachine"], ", ".join(row["scenarios"]), row["description"])
    console.print(table)


@app.command()
def validate() -> None:
    """Check the template, the ASL (fidelity rules), schemas, the approval-gate proof and the roles' grants."""
    from . import validate as checks

    results = checks.run()
    for check in results:
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        console.print(f"{mark}  {check.name}")
        for problem in check.problems:
            console.print(f"      {problem}")
    failed = [c for c in results if not c.ok]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command()
def preflight(
    parameter: Annotated[list[str] | None, typer.Option("--parameter", help="A deploy parameter, Name=Value (repeatable).")] = None,
) -> None:
    """Before `sam deploy`: check, with your AWS credentials, that what the stack needs already exists (the pipeline
    functions' log groups, which its metric filters read)."""
    import boto3

    from . import prerequisites

    values = dict(item.split("=", 1) for item in parameter or [])
    missing = prerequisites.missing_log_groups(boto3.client("logs"), values)
    for group in missing:
        console.print(
            f"[red]missing[/]  log group {group}: create it (aws logs create-log-group --log-group-name {group}) or run the function once"
        )
    if missing:
        raise typer.Exit(1)
    console.print(f"ok  the log groups the metric filters read exist: {', '.join(prerequisites.filtered_log_groups(values))}")


@app.command()
def simulate(
    playbook: Annotated[str, typer.Argument(help="Playbook id, e.g. lambda-throttling.")],
    scenario_name: Annotated[str, typer.Option("--scenario", help="Scenario name (scenarios/<playbook>/<name>.yaml) or path.")],
    decision: Annotated[
        Decision | None,
        typer.Option(help="How the approver answers (default: the scenario's own); browser serves the approval page on localhost for you."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Diagnose and report the plan; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the timeline.")] = False,
) -> None:
    """Run a scenario in the local AWS account, with a live timeline; exit 0 only if the scenario's expectations hold."""
    from . import scenario
    from . import simulate as simulation

    warnings.filterwarnings("ignore")
    try:
        loaded = scenario.load(playbook, scenario_name)
        if not as_json:
            console.print(f"[bold]{playbook}[/] / [bold]{loaded.name}[/]: {escape(loaded.description.strip())}")
        progress = None if as_json else (lambda line: console.print(f"  {escape(line)}"))
        decide = _prompt if decision == Decision.prompt else None
        chosen = None if decision in (None, Decision.prompt) else decision.value
        deadline = 3600.0 if decision in (Decision.prompt, Decision.browser) else simulation.DEFAULT_DEADLINE_S
        result = simulation.run(loaded, decision=chosen, dry_run=dry_run, on_progress=progress, decide=decide, deadline_s=deadline)
    except project.ProjectError as error:
        raise _fail(str(error)) from None
    if as_json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        _print_result(result)
    if not result.passed:
        raise typer.Exit(1)


def _prompt(email: Any) -> str:
    console.print(f"\n[bold]{escape(email.subject)}[/]\n{escape(email.body)}\n")
    return "approve" if typer.confirm("Approve?", default=False) else "reject"


def _runs(mutations: list[str]) -> list[str]:
    """Mutations for reading: a run of more than three calls of one API becomes "<api> x<count>"."""
    lines: list[str] = []
    index = 0
    while index < len(mutations):
        api = mutations[index].split(" ", 1)[0]
        end = index
        while end < len(mutations) and mutations[end].split(" ", 1)[0] == api:
            end += 1
        lines += [f"{api} x{end - index}"] if end - index > 3 else mutations[index:end]
        index = end
    return lines


def _print_result(result: Any) -> None:
    colour = "green" if result.outcome in ("remediated", "no-action", "dry-run") else "yellow"
    console.print(f"  outcome: [bold {colour}]{result.outcome}[/] (execution {result.status})")
    console.print(f"  mutations: {escape(', '.join(_runs(result.mutations)) or 'none')}")
    console.print(
        f"  {result.transitions} state transitions, {result.lambda_invocations} Lambda invocations, {result.aws_calls} AWS calls, "
        f"{result.duration_s:.2f} s wall ({result.simulated_wait_s:.0f} s of waits simulated)"
    )
    for failure in result.expect_failures:
        console.print(f"  [red]expectation failed:[/] {escape(failure)}")


class DiagramFormat(StrEnum):
    mermaid = "mermaid"
    svg = "svg"


@app.command()
def diagram(
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    output_format: Annotated[
        DiagramFormat, typer.Option("--format", help="mermaid (text) or svg (needs mermaid-cli's mmdc on PATH).")
    ] = DiagramFormat.mermaid,
) -> None:
    """Draw a playbook's ASL: approval states, mutating tasks and outcomes are visibly distinct."""
    from . import docs

    try:
        chosen = project.playbook(playbook)
        text = docs.mermaid(chosen.definition, chosen.logical_id)
    except project.ProjectError as error:
        raise _fail(str(error)) from None
    if output_format == DiagramFormat.mermaid:
        print(text, end="")
        return
    try:
        print(docs.svg(text), end="")
    except project.ProjectError as error:
        raise _fail(str(error)) from None


@app.command()
def assure() -> None:
    """Run the fault matrix, least-privilege, secrets and coverage checks over every playbook; write docs/assurance.md."""
    from . import assure as assurance

    warnings.filterwarnings("ignore")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        stages: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(stage, total=total)
            bar.update(stages[stage], completed=done)

        results = assurance.run_all(progress=progress)
    assurance.write(results)
    for case in results["bad_input"]:
        console.print(
            f"{case['playbook']}: {case['refused']}/{case['tried']} bad inputs refused, the slowest in {case['slowest_s']:.3f} s "
            f"and at most {case['most_states']} states"
        )
    problems = assurance.failures(results)
    for problem in problems:
        console.print(f"[red]FAIL[/] {escape(problem)}")
    console.print(f"{len(results['runs'])} runs; {len(problems)} problems; wrote {assurance.REPORT.relative_to(project.ROOT)}")
    if problems:
        raise typer.Exit(1)


@app.command("docs")
def write_docs(
    svg: Annotated[
        bool, typer.Option("--svg", help="Also draw the diagrams as SVG in docs/ (mermaid-cli and Chromium: make diagrams).")
    ] = False,
) -> None:
    """Regenerate docs/playbooks/*.md and docs/local-account.md from the ASL, template and schemas."""
    from . import docs

    written = docs.write()
    if svg:
        try:
            written += docs.write_svgs()
        except project.ProjectError as error:
            raise _fail(str(error)) from None
    console.print("\n".join(f"wrote {path}" for path in written) or "docs are up to date")


@app.command("retry-choices")
def retry_choices_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(metavar="[PATHS]...", help="ASL files (default: every statemachines/*.asl.json).")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a Task needs rewriting.")] = False,
) -> None:
    """A denial is not retried: rewrite each aws-sdk Task that retries the error a denial comes as (a "<state>: retry?"
    Choice on the Cause, a "<state>: keep the error" Pass and a "<state> (retry)" copy; Lambda and DynamoDB just stop
    retrying their base class), and re-sync each "(retry)" copy with its Task."""
    from . import retry_choices

    try:
        rewrites = retry_choices.plan(paths or retry_choices.state_machine_files())
    except project.ProjectError as error:
        raise _fail(str(error)) from None
    if not rewrites:
        console.print("nothing to rewrite")
        return
    if not check:
        try:
            retry_choices.write(rewrites)
        except OSError as error:
            raise _fail(f"{error.filename}: {error.strerror}") from None
    for rewrite in rewrites:
        shown = rewrite.path.relative_to(project.ROOT) if rewrite.path.is_relative_to(project.ROOT) else rewrite.path
        for state in rewrite.states:
            console.print(f"{escape(str(shown))}: {escape(state)}", soft_wrap=True)
    if check:
        count = sum(len(rewrite.states) for rewrite in rewrites)
        errors.print(f"{count} Task{'s' if count > 1 else ''} to rewrite: run playbooks retry-choices")
        raise typer.Exit(1)


@app.command()
def start(
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    input_file: Annotated[
        Path, typer.Option("--input", help="JSON file with the console input (events/<playbook>-console.json shows one).")
    ],
    state_machine_arn: Annotated[
        str | None, typer.Option(help="ARN of the deployed state machine (default: from the stack's outputs); its region is used.")
    ] = None,
    stack_name: Annotated[str, typer.Option(help="Stack the playbooks were deployed with (sam deploy --stack-name).")] = "etl-playbooks",
    region: Annotated[str | None, typer.Option(help="AWS region (default: the ARN's, else AWS_REGION or the profile's).")] = None,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile from your AWS config (default: AWS_PROFILE or the default chain).")
    ] = None,
) -> None:
    """Start a playbook on real AWS (StartExecution) after validating the input against its schema."""
    from .start import read_input, start_execution

    try:
        document = read_input(input_file)
        arn = start_execution(playbook, document, state_machine_arn, stack_name, region=region, profile=profile, source=str(input_file))
    except project.ProjectError as error:
        raise _fail(str(error)) from None
    console.print(f"started {arn}", soft_wrap=True)


@app.command()
def dashboard(
    out: Annotated[Path, typer.Option(help="Where to write the SVG.")] = Path("docs/dashboard.svg"),
) -> None:
    """Draw the template's CloudWatch dashboard from the local account's metrics after a set of scenarios."""
    from . import dashboard as board

    runs = board.picture_runs()
    found = board.collect(runs, on_progress=lambda line: errors.print(f"[dim]{escape(line)}[/]"))
    out.write_text(
        board.svg(found, f"{len(runs)} simulated runs: each playbook's undo, brake, circuit-open, rejected, expired and dry-run scenarios")
    )
    console.print(f"wrote {out}")


class BrakeAction(StrEnum):
    on = "on"
    off = "off"
    status = "status"


def _user_error(message: str) -> typer.Exit:
    """A user's mistake (no region, credentials or stack): one line, exit code 2."""
    errors.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _session(region: str | None, profile: str | None) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except ProfileNotFound as error:
        raise _user_error(str(error)) from None


@app.command()
def brake(
    action: Annotated[BrakeAction, typer.Argument(help="on: engage (every playbook pauses); off: release; status: show.")],
    stack_name: Annotated[str, typer.Option(help="Stack the playbooks were deployed with.")] = "etl-playbooks",
    region: Annotated[str | None, typer.Option(help="AWS region (default: the environment's).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile (default: the environment's).")] = None,
) -> None:
    """The stack-wide brake on real AWS: engaged, every playbook diagnoses and reports but asks and changes nothing."""
    from . import controls

    session = _session(region, profile)
    try:
        name = controls.brake_parameter(session.client("cloudformation"), stack_name)
        ssm = session.client("ssm")
        state = controls.brake_state(ssm, name) if action == BrakeAction.status else controls.set_brake(ssm, name, action == BrakeAction.on)
    except project.ProjectError as error:
        raise _user_error(str(error)) from None
    meaning = "playbooks pause: nothing is asked or changed" if state == controls.ENGAGED else "playbooks run normally"
    console.print(f"brake {state} ({name}): {meaning}")


@app.command()
def undo(
    execution: Annotated[str, typer.Argument(help="ARN of the remediating run whose changes to undo.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the inverse plan only; ask and change nothing.")] = False,
    stack_name: Annotated[str, typer.Option(help="Stack the playbooks were deployed with.")] = "etl-playbooks",
    region: Annotated[str | None, typer.Option(help="AWS region (default: the environment's).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile (default: the environment's).")] = None,
) -> None:
    """Start the undo state machine on real AWS for a remediating run (drift-checked, approved per action, verified)."""
    from . import controls

    session = _session(region, profile)
    try:
        arn = controls.start_undo(session.client("stepfunctions"), session.client("cloudformation"), stack_name, execution, dry_run)
    except project.ProjectError as error:
        raise _user_error(str(error)) from None
    console.print(f"started {arn}: the approvers receive the inverse plan by e-mail")


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())
