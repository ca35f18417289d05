"""Each run's outcome and timings as CloudWatch metrics (Powertools Metrics: embedded metric format in the log).

- `Runs` (Count) by Playbook and Outcome: one per finished run.
- `TimeToDecision` (Seconds) by Playbook: from the run's start to the approver's decision.
- `TimeToRemediated` (Seconds) by Playbook: from the trigger (the alarm's time, else the run's start) to the report
  of a remediated run, the verification wait included.

The template's dashboard graphs exactly these; the service dimension is Powertools' own (POWERTOOLS_SERVICE_NAME).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from shared import clock

NAMESPACE = "EtlPlaybooks"


def timings(state: dict[str, Any], now: datetime) -> dict[str, float]:
    """{"TimeToDecision": s, "TimeToRemediated": s}, each only where the run had one."""
    started = (state.get("lock") or {}).get("now")
    if not started:
        return {}
    start = clock.parse(started)
    found = {}
    decided = (state.get("approval") or {}).get("decidedAt")
    if decided:
        found["TimeToDecision"] = max((clock.parse(decided) - start).total_seconds(), 0.0)
    if state.get("outcome") == "remediated":
        trigger = (state.get("trigger") or {}).get("time")
        begin = clock.parse(trigger) if isinstance(trigger, str) and trigger else start
        found["TimeToRemediated"] = max((now - begin).total_seconds(), 0.0)
    return found


def publish(playbook: str, outcome: str, state: dict[str, Any], now: datetime) -> dict[str, float]:
    """Emit the run's metrics (one EMF document each, flushed at once); returns the timings it emitted."""
    with single_metric(name="Runs", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="Playbook", value=playbook)
        metric.add_dimension(name="Outcome", value=outcome)
    found = timings(state, now)
    for name, seconds in found.items():
        with single_metric(name=name, unit=MetricUnit.Seconds, value=seconds, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="Playbook", value=playbook)
    return found
