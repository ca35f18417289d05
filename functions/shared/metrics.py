"""CloudWatch metric reads shared by the playbooks' diagnosis and verification functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def datapoints(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    start: datetime,
    end: datetime,
    period: int,
    statistics: tuple[str, ...] = ("Sum",),
) -> list[dict[str, Any]]:
    """One metric's datapoints between `start` and `end` in `period`-second bins, oldest first."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=list(statistics),
    )["Datapoints"]
    return sorted(points, key=lambda point: point["Timestamp"])
