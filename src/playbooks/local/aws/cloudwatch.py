"""CloudWatch: alarms and metrics; GetMetricStatistics rounds its start time and bins from it as AWS documents."""

from __future__ import annotations

import datetime
from typing import Any

from .runtime import Gap, Source

GAPS = [
    Gap(
        "cloudwatch alarm state",
        "emits a 'CloudWatch Alarm State Change' event to EventBridge",
        "emits nothing: the local account builds the real-shaped event and delivers it",
        sources=(
            Source(
                "Amazon CloudWatch user guide, Alarm events and EventBridge",
                "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html",
            ),
            Source(
                "Amazon EventBridge events reference, Amazon CloudWatch events",
                "https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudwatch.html",
            ),
        ),
    ),
    Gap(
        "cloudwatch:GetMetricStatistics",
        "rounds StartTime down: to the minute when it is less than 15 days old, to 5 minutes up to 63 days, to the hour "
        "beyond; bins datapoints in Period-second steps from that rounded start; takes a Period of 1, 5, 10, 20, 30 or a "
        "multiple of 60, and returns no datapoints when the start is more than 3 hours old and the Period is not a "
        "multiple of 60 (up to 15 days), 300 (up to 63 days) or 3600 (beyond). Source: CloudWatch API reference, "
        "GetMetricStatistics (StartTime, Period)",
        "filters raw datapoints from the exact StartTime, bins from the first datapoint and accepts any Period: we round, "
        "bin and check as AWS does (a verification from the moment of a change sees that minute's earlier datapoints)",
        sources=(
            Source(
                "Amazon CloudWatch API reference, GetMetricStatistics (StartTime, Period)",
                "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html",
            ),
        ),
    ),
]

DAY = datetime.timedelta(days=1)
HIGH_RESOLUTION_PERIODS = {1, 5, 10, 20, 30}


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)


def rounded_start(start: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
    """StartTime as CloudWatch uses it: rounded down by its age."""
    age = now - start
    step = 60 if age < 15 * DAY else 300 if age < 63 * DAY else 3600
    epoch = int(start.timestamp())
    return datetime.datetime.fromtimestamp(epoch - epoch % step, tz=datetime.UTC)


def period_returns_data(period: int, start: datetime.datetime, now: datetime.datetime) -> bool:
    """Whether CloudWatch returns datapoints for `period` from a start this old."""
    age = now - start
    if age <= datetime.timedelta(hours=3):
        return True
    needed = 60 if age < 15 * DAY else 300 if age < 63 * DAY else 3600
    return period % needed == 0


def _patch_get_metric_statistics() -> None:
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend, Statistics

    def get_metric_statistics(
        self: Any,
        namespace: str,
        metric_name: str,
        start_time: datetime.datetime,
        end_time: datetime.datetime,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
    ) -> list[Any]:
        if period <= 0 or (period not in HIGH_RESOLUTION_PERIODS and period % 60):
            raise InvalidParameterValue("The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")
        now = datetime.datetime.now(datetime.UTC)
        start_time, end_time = _utc(start_time), _utc(end_time)
        start = rounded_start(start_time, now)
        if start >= end_time:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        if not period_returns_data(period, start_time, now):
            return []
        bins: dict[int, Any] = {}
        for datum in self.get_all_metrics():
            if datum.namespace != namespace or datum.name != metric_name or not start <= _utc(datum.timestamp) < end_time:
                continue
            if (unit and datum.unit != unit) or (dimensions and not datum.filter(None, None, dimensions)):
                continue
            index = int((_utc(datum.timestamp) - start).total_seconds()) // period
            if index not in bins:
                bins[index] = Statistics(stats, start + datetime.timedelta(seconds=index * period))
            bins[index].metric_data.append(datum)
            bins[index].unit = datum.unit
        return [bins[index] for index in sorted(bins)]

    CloudWatchBackend.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]


def patch_moto() -> None:
    _patch_get_metric_statistics()
