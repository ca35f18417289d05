"""CloudWatch Logs' extraction of metrics from embedded-metric-format (EMF) log lines.

On AWS a Lambda function's stdout goes to CloudWatch Logs, which turns each EMF document (a JSON line with an `_aws`
member) into metric datapoints. In the local account the handlers run in-process: what a handler prints is captured
per thread (the CLI's own output is untouched) and each EMF document lands in the account's CloudWatch. Documents
that break the specification are dropped, as CloudWatch drops them (it counts them in AWS/Logs instead).

Source: "Specification: Embedded metric format", Amazon CloudWatch User Guide.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from ..recorder import PRINCIPAL
from .runtime import Gap, Source

GAPS = [
    Gap(
        "CloudWatch embedded metric format",
        "CloudWatch Logs turns each EMF document a function prints into metric datapoints; documents that break the "
        "specification are dropped (Specification: Embedded metric format)",
        "functions run in-process, so nothing reaches a log group: this module captures each handler's stdout per "
        "thread and puts every EMF document's metrics into the account's CloudWatch",
        sources=(
            Source(
                "Amazon CloudWatch user guide, Specification: Embedded metric format",
                "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html",
            ),
        ),
    ),
]

_LOCAL = threading.local()
MAX_DIMENSIONS = 30


class _PerThreadStdout(io.TextIOBase):
    """sys.stdout that sends a capturing thread's writes to its buffer and everyone else's to the real stream."""

    def __init__(self, real: TextIO):
        super().__init__()
        self.real = real

    def write(self, text: str) -> int:
        buffer = getattr(_LOCAL, "buffer", None)
        return (buffer or self.real).write(text)

    def flush(self) -> None:
        self.real.flush()


def install() -> None:
    if not isinstance(sys.stdout, _PerThreadStdout):
        sys.stdout = _PerThreadStdout(sys.stdout)


def uninstall() -> None:
    if isinstance(sys.stdout, _PerThreadStdout):
        sys.stdout = sys.stdout.real


@contextlib.contextmanager
def capture() -> Iterator[io.StringIO]:
    """What the current thread prints while inside, instead of printing it."""
    buffer = io.StringIO()
    _LOCAL.buffer = buffer
    try:
        yield buffer
    finally:
        _LOCAL.buffer = None


def metric_data(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) for each metric of each dimension set of one EMF document; [] if it is not one."""
    try:
        document = json.loads(line)
    except ValueError:
        return []
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("Timestamp"), int | float):
        return []
    when = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
    found = []
    for directive in meta.get("CloudWatchMetrics") or []:
        for dimension_set in directive.get("Dimensions") or [[]]:
            if len(dimension_set) > MAX_DIMENSIONS or any(not isinstance(document.get(name), str) for name in dimension_set):
                return []  # a dimension must be a string member of the root: the whole document is rejected
            dimensions = [{"Name": name, "Value": document[name]} for name in dimension_set]
            for metric in directive.get("Metrics") or []:
                values = document.get(metric.get("Name"))
                for value in values if isinstance(values, list) else [values]:
                    if not isinstance(value, int | float):
                        return []
                    datum = {"MetricName": metric["Name"], "Dimensions": dimensions, "Timestamp": when, "Value": float(value)}
                    if metric.get("Unit"):
                        datum["Unit"] = metric["Unit"]
                    found.append((str(directive["Namespace"]), datum))
    return found


def land(cloudwatch: Any, printed: str) -> int:
    """Put the metrics of every EMF line in `printed` into CloudWatch, as CloudWatch Logs does; returns how many."""
    data = [item for line in printed.splitlines() if line.strip().startswith("{") for item in metric_data(line)]
    token = PRINCIPAL.set("cloudwatch-logs")
    try:
        for namespace, datum in data:
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=[datum])
    finally:
        PRINCIPAL.reset(token)
    return len(data)
