"""`make bench`: what a playbook run costs and how fast the project is, measured in one run on this machine.

Figures are medians of repeated runs with their min and max; they are compared only with each other and with the
targets below, never with numbers from another machine.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import project, scenario, simulate

# Public prices (us-east-1): Standard workflow transitions, Lambda on arm64 (GB-second and request).
PRICE_TRANSITION = 0.025 / 1000
PRICE_GB_SECOND_ARM = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000
# before_approval: 15 until the brake and circuit check (one Task, one Choice) came between every plan and its approval
# e-mail, two transitions in every playbook; access-denied's diagnosis (message, CloudTrail, role and resource policies,
# the simulator) was at 15 and is at 17. The check cannot go: an engaged brake must stop the e-mail. 19 since its two
# paginated reads (CloudTrail, the simulator) each ask a Choice whether a short or empty page left more to read.
TARGETS = {"transitions": 60, "cost_usd": 0.0015, "before_approval": 19, "simulation_s": 3.0, "import_ms": 250, "make_test_s": 480}
MAIN_SCENARIO = {
    "lambda-throttling": "throttled",
    "execution-stuck": "lambda-timeout",
    "event-loop": "processed-bucket-loop",
    "cost-spike": "everything",
    "access-denied": "missing-s3-put",
}
RESULTS = project.ROOT / "bench" / "results.json"


def _event_loop_section() -> list[dict[str, Any]]:
    """bench/event_loop_stop.py: our bulk stopper against the runbook's one-by-one loop, 10,000 RUNNING executions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("event_loop_stop", project.ROOT / "bench" / "event_loop_stop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return list(module.section_rows())


# Extra sections other benchmarks contribute (name -> function returning rows of {label: value}).
SECTIONS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "event-loop: stopping 10,000 RUNNING executions (ours vs the runbook's loop)": _event_loop_section,
}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def cost(result: simulate.Result) -> float:
    return (
        result.transitions * PRICE_TRANSITION + result.lambda_gb_seconds * PRICE_GB_SECOND_ARM + result.lambda_invocations * PRICE_REQUEST
    )


def playbook_runs(runs: int) -> list[dict[str, Any]]:
    rows = []
    for playbook in project.playbooks().values():
        main = MAIN_SCENARIO.get(playbook.id) or scenario.scenarios(playbook.id)[0].name
        results = [simulate.run(scenario.load(playbook.id, main)) for _ in range(runs)]
        first = results[0]
        rows.append(
            {
                "playbook": playbook.id,
                "scenario": main,
                "outcome": first.outcome,
                "transitions": first.transitions,
                "before_approval": first.transitions_before_approval,
                "lambda_invocations": first.lambda_invocations,
                "aws_calls": first.aws_calls,
                "cost_usd": round(statistics.median(cost(r) for r in results), 6),
                "simulation_s": spread([r.duration_s for r in results]),
            }
        )
    return rows


def scenario_times(runs: int) -> list[dict[str, Any]]:
    rows = []
    for playbook in project.playbooks().values():
        for loaded in scenario.scenarios(playbook.id):
            times = [simulate.run(loaded).duration_s for _ in range(runs)]
            rows.append({"scenario": f"{playbook.id}/{loaded.name}", "simulation_s": spread(times)})
    return rows


# What the Lambda Python runtime provides besides the standard library: the SDK and its dependencies (no AWS CRT, no
# pyOpenSSL, which botocore and urllib3 load whenever they are installed, as they are here for SAM CLI).
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


def _site_packages() -> Path:
    import jsonschema

    return Path(jsonschema.__file__).resolve().parents[1]


def _cold_start_path(folder: Path) -> list[str]:
    """A sys.path as a function's cold start has it: our modules as deployed (source only: /var/task is read-only, so
    they are compiled at every cold start), the packages `sam build` puts next to them (pip compiled those; taken from
    this machine's site-packages, as the build's own wheels are for arm64), and the runtime's SDK."""
    import shutil

    site = _site_packages()
    code, libraries = folder / "task", folder / "libraries"
    shutil.copytree(project.FUNCTIONS, code, ignore=shutil.ignore_patterns("__pycache__"))
    (libraries / "__pycache__").mkdir(parents=True)
    build = next((p for p in sorted((project.ROOT / ".aws-sam" / "build").glob("*")) if p.is_dir()), None)
    shipped = {p.name for p in build.iterdir()} if build else set()
    ours = {p.name for p in project.FUNCTIONS.iterdir()}
    for name in sorted((shipped - ours) | set(RUNTIME_SDK)):
        if name.endswith(".dist-info") or not (site / name).exists():
            continue
        (libraries / name).symlink_to(site / name)
        if name.endswith(".py"):
            for compiled in (site / "__pycache__").glob(f"{name.removesuffix('.py')}.*.pyc"):
                (libraries / "__pycache__" / compiled.name).symlink_to(compiled)
    return [str(code), str(libraries)]


def import_times(runs: int) -> list[dict[str, Any]]:
    """Cold-start proxy: a fresh interpreter without site-packages (-S) and writing no bytecode (-B) importing each
    handler module, its own imports included, with only what the deployed function has."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = _cold_start_path(Path(folder))
        for module in sorted(p.stem for p in project.FUNCTIONS.glob("*.py")):
            code = f"import sys,time; sys.path[:0]={path!r}; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
            times = [
                float(subprocess.run([sys.executable, "-S", "-B", "-c", code], check=True, capture_output=True, text=True).stdout) * 1000  # noqa: S603
                for _ in range(runs)
            ]
            rows.append({"module": module, "import_ms": spread(times)})
    return rows


def package_sizes() -> list[dict[str, Any]]:
    """Size of each built deployment package (`sam build` output, zipped as `sam deploy` uploads it)."""
    build = project.ROOT / ".aws-sam" / "build"
    rows = []
    for folder in sorted(p for p in build.glob("*") if p.is_dir()):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in folder.rglob("*"):
                if file.is_file():
                    archive.write(file, file.relative_to(folder))
        rows.append({"function": folder.name, "zipped_kb": round(len(buffer.getvalue()) / 1024, 1)})
    return rows


def make_test_seconds() -> tuple[float, bool]:
    """How long `make test` takes here, and whether it passed (a failing suite still has a duration worth printing)."""
    began = time.perf_counter()
    done = subprocess.run(["make", "test"], cwd=project.ROOT, check=False, capture_output=True)  # noqa: S607 - the project's own make
    if done.returncode:
        (project.ROOT / "bench" / "make-test.log").write_bytes(done.stdout + done.stderr)
    return round(time.perf_counter() - began, 1), done.returncode == 0


def run(runs: int = 5, with_make_test: bool = True) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "cores": __import__("os").cpu_count()},
        "targets": TARGETS,
        "playbooks": playbook_runs(runs),
        "scenarios": scenario_times(max(3, runs // 2)),
        "imports": import_times(runs),
        "packages": package_sizes(),
    }
    for name, section in SECTIONS.items():
        results[name] = section()
    if with_make_test:
        results["make_test_s"], results["make_test_passed"] = make_test_seconds()
    return results


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]over[/]"


def render(results: dict[str, Any], console: Console) -> None:
    targets = results["targets"]
    table = Table(title="Playbooks, main scenario (median of runs; min-max)")
    columns = (
        "playbook",
        "outcome",
        f"transitions (target <= {targets['transitions']})",
        f"before e-mail (target <= {targets['before_approval']})",
        "Lambda",
        "AWS calls",
        f"cost/run (target < ${targets['cost_usd']})",
        f"wall s (target <= {targets['simulation_s']})",
    )
    for column in columns:
        table.add_column(column)
    for row in results["playbooks"]:
        wall = row["simulation_s"]
        table.add_row(
            f"{row['playbook']} / {row['scenario']}",
            row["outcome"],
            f"{row['transitions']} {_mark(row['transitions'] <= targets['transitions'])}",
            f"{row['before_approval']} {_mark((row['before_approval'] or 0) <= targets['before_approval'])}",
            str(row["lambda_invocations"]),
            str(row["aws_calls"]),
            f"${row['cost_usd']:.6f} {_mark(row['cost_usd'] < targets['cost_usd'])}",
            f"{wall['median']:.2f} ({wall['min']:.2f}-{wall['max']:.2f}) {_mark(wall['median'] <= targets['simulation_s'])}",
        )
    console.print(table)
    scenarios = Table(title="Simulated scenarios, wall seconds")
    for column in ("scenario", f"median (target <= {targets['simulation_s']})", "min", "max"):
        scenarios.add_column(column)
    for row in results["scenarios"]:
        wall = row["simulation_s"]
        scenarios.add_row(
            row["scenario"],
            f"{wall['median']:.2f} {_mark(wall['median'] <= targets['simulation_s'])}",
            f"{wall['min']:.2f}",
            f"{wall['max']:.2f}",
        )
    console.print(scenarios)
    imports = Table(title="Handler modules: import time (cold-start proxy) and package size")
    for column in ("module / package", f"import ms (median, min-max; target <= {targets['import_ms']})", "zipped KiB"):
        imports.add_column(column)
    for row in results["imports"]:
        ms = row["import_ms"]
        imports.add_row(
            row["module"], f"{ms['median']:.0f} ({ms['min']:.0f}-{ms['max']:.0f}) {_mark(ms['median'] <= targets['import_ms'])}", ""
        )
    for row in results["packages"]:
        imports.add_row(row["function"], "", f"{row['zipped_kb']:.0f}")
    console.print(imports)
    for name in SECTIONS:
        section = Table(title=name)
        rows = results.get(name) or []
        for column in rows[0] if rows else []:
            section.add_column(column)
        for row in rows:
            section.add_row(*(str(value) for value in row.values()))
        console.print(section)
    if "make_test_s" in results:
        verdict = "passed" if results.get("make_test_passed", True) else "[red]FAILED[/] (output in bench/make-test.log)"
        console.print(
            f"make test: {verdict} in {results['make_test_s']:.0f} s {_mark(results['make_test_s'] <= targets['make_test_s'])} "
            f"(target {targets['make_test_s']} s)"
        )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with_make_test = "--no-make-test" not in sys.argv
    console = Console(width=160)
    results = run(runs, with_make_test)
    Path(RESULTS).parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    render(results, console)
    console.print(f"written {RESULTS.relative_to(project.ROOT)}")


if __name__ == "__main__":
    main()
