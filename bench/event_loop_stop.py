"""Benchmark (not a test): stop N RUNNING executions in the local account, our stopper against the runbook's loop.

Both contenders stop the same number of dormant RUNNING executions of etl-workflow, in one run, against the same
local account: the same StopExecution/ListExecutions quotas (us-east-1 token buckets) and the same round-trip
latency per Step Functions call (slept for real, so wall times compare concurrency with one-at-a-time). Quota waits
are simulated on the account's clock, never slept; the projected AWS time is that clock's elapsed time (real time
plus simulated waits) for the run.

    python bench/event_loop_stop.py [--executions 10000] [--latency-ms 25]

`stop_benchmark()` returns the rows and `section_rows()` the same as {label: value} dicts for a report that collects
sections from several benchmarks; `make bench` prints the table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from playbooks.local.account import LocalAccount
from playbooks.local.aws import sfn as aws_sfn
from playbooks.local.recorder import PRINCIPAL, RECORDER
from playbooks.scenario import put_workflows

WORKFLOW = "etl-workflow"
CAUSE = "Event loop mitigation"
# What the quota allows in us-east-1: the bucket at once, the rest at the refill rate.
STOP_BUCKET, STOP_REFILL = aws_sfn.SFN_QUOTAS["states:StopExecution"]


@dataclass
class Row:
    contender: str
    executions: int
    wall_s: float
    api_calls: int
    throttled: int
    left_running: int
    projected_aws_s: float


def quota_bound_s(executions: int) -> float:
    return max(0.0, executions - STOP_BUCKET) / STOP_REFILL


def _running(sfn: Any, arn: str) -> int:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING", PaginationConfig={"PageSize": 1000})
    return sum(len(page["executions"]) for page in pages)


def _add_running(account: LocalAccount, arn: str, count: int, prefix: str) -> None:
    now = datetime.now(UTC)
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "processed-data-bucket"}, "object": {"key": "k"}},
    }
    aws_sfn.add_dormant_executions(
        # started a minute ago and before: a loop's executions, none so fresh that ListExecutions does not show it yet
        arn,
        [(f"{prefix}-{i:06d}", json.dumps(event), now - timedelta(minutes=1, milliseconds=count - i)) for i in range(count)],
    )


def _measure(account: LocalAccount, contender: str, executions: int, arn: str, run: Any) -> Row:
    aws_sfn.reset_quotas()
    first_call = len(RECORDER.calls)
    clock_start, wall_start = account.clock.now(), time.perf_counter()
    token = PRINCIPAL.set(contender)
    try:
        run()
    finally:
        PRINCIPAL.reset(token)
    wall = time.perf_counter() - wall_start
    projected = account.clock.now() - clock_start
    calls = [c for c in RECORDER.calls[first_call:] if c.principal == contender and c.api.startswith("states:")]
    saved = aws_sfn.API_LATENCY_S["value"]
    aws_sfn.API_LATENCY_S["value"] = 0.0
    left = _running(account.client("stepfunctions"), arn)
    aws_sfn.API_LATENCY_S["value"] = saved
    return Row(
        contender=contender,
        executions=executions,
        wall_s=round(wall, 2),
        api_calls=len(calls),
        throttled=sum(1 for c in calls if c.error == "ThrottlingException"),
        left_running=left,
        projected_aws_s=round(projected, 1),
    )


def stop_benchmark(executions: int = 10_000, latency_ms: float = 25.0, concurrency: int = 32) -> list[Row]:
    """Our stopper, then the runbook's loop, each stopping `executions` RUNNING executions; one row each."""
    with LocalAccount() as account:
        put_workflows(account, [{"name": WORKFLOW}], datetime.now(UTC))
        arn = f"arn:aws:states:{account.region}:{account.account_id}:stateMachine:{WORKFLOW}"
        event_loop = importlib.import_module("event_loop")
        aws_sfn.reset_quotas(latency_s=latency_ms / 1000)

        # Ours: the stop Lambda's own function, round after round as the state machine runs it, until none is left.
        ours = boto3.client("stepfunctions", region_name=account.region, config=Config(retries={"mode": "standard", "max_attempts": 1}))

        def our_stopper() -> None:
            while True:
                result = event_loop.stop_running(
                    ours, arn, concurrency=concurrency, rate=STOP_REFILL, burst=STOP_BUCKET, seconds_left=lambda: 900.0, cause=CAUSE
                )
                if result["listed"] == 0:
                    return

        # The runbook's loop: list every RUNNING execution, then stop them one at a time (the CLI's default retries).
        cli = boto3.client("stepfunctions", region_name=account.region, config=Config(retries={"mode": "standard", "max_attempts": 3}))

        def runbook_loop() -> None:
            pages = cli.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING")
            for arn_to_stop in [e["executionArn"] for page in pages for e in page["executions"]]:
                try:
                    cli.stop_execution(executionArn=arn_to_stop, cause=CAUSE)
                except ClientError:
                    continue  # the shell loop goes on to the next execution

        _add_running(account, arn, executions, "ours")
        rows = [_measure(account, "our stopper", executions, arn, our_stopper)]
        _add_running(account, arn, executions, "runbook")
        rows.append(_measure(account, "runbook loop", executions, arn, runbook_loop))
        aws_sfn.reset_quotas(latency_s=0.0)
    return rows


def section_rows(executions: int = 10_000, latency_ms: float = 25.0) -> list[dict[str, Any]]:
    """The same comparison as rows of {label: value}, for a benchmark report that collects sections."""
    rows = stop_benchmark(executions, latency_ms)
    ours, runbook = rows[0], rows[1]
    return [asdict(row) for row in rows] + [
        {
            "contender": "ratio",
            "wall_speedup": round(runbook.wall_s / max(ours.wall_s, 1e-9), 1),
            # None when the whole batch fits in the quota's bucket (nothing to wait for).
            "projected_vs_quota": round(ours.projected_aws_s / quota_bound_s(executions), 2) if quota_bound_s(executions) else None,
        }
    ]


def render(rows: list[Row], latency_ms: float) -> str:
    header = f"{'contender':<14} {'executions':>10} {'wall s':>9} {'API calls':>10} {'throttled':>9} {'left RUNNING':>12} {'projected AWS s':>16}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{r.contender:<14} {r.executions:>10} {r.wall_s:>9.2f} {r.api_calls:>10} {r.throttled:>9} {r.left_running:>12} {r.projected_aws_s:>16.1f}"
        for r in rows
    ]
    ours, runbook = rows[0], rows[1]
    bound = quota_bound_s(ours.executions)
    lines += [
        "",
        f"Step Functions call latency: {latency_ms:g} ms (both); quota: StopExecution bucket {STOP_BUCKET:g}, refill {STOP_REFILL:g}/s (us-east-1).",
        f"Wall time: our stopper is {runbook.wall_s / max(ours.wall_s, 1e-9):.1f}x faster than the runbook's loop.",
        f"Projected on AWS: our stopper {ours.projected_aws_s:.1f} s; the quota allows {bound:.1f} s "
        f"({ours.projected_aws_s / bound if bound else float('nan'):.2f}x of it); the runbook's loop {runbook.projected_aws_s:.1f} s "
        f"({runbook.projected_aws_s / max(ours.projected_aws_s, 1e-9):.1f}x ours).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = stop_benchmark(args.executions, args.latency_ms, args.concurrency)
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else render(rows, args.latency_ms))


if __name__ == "__main__":
    main()
