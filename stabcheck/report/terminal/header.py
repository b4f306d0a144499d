"""The top of the terminal report: the data set and environment, and the classes.

``header_table`` names the data set, how many samples were probed and held out, the input
shape and labels, and where the probes ran; ``class_table`` lists the classes with their
counts and shares and the weight each class-weight strategy gives them (only the head, the
tail and the range where there are many). Display only.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from stabcheck.results import RunReport
from stabcheck.text import executor_text, fmt_number, fmt_weight, join
from stabcheck.units import human_bytes

__all__ = ["class_table", "header_table", "title_line"]

# More classes than this and the class table shows only its head, its tail and min/max.
_MAX_CLASS_ROWS = 12
_CLASS_HEAD = 5


def _describe_devices(devices: Any) -> str:
    if not isinstance(devices, (list, tuple)) or not devices:
        return ""
    names = []
    for device in devices:
        if isinstance(device, dict):
            name = device.get("name") or device.get("device_type") or device.get("kind")
            names.append(str(name) if name else json.dumps(device, default=str))
        else:
            names.append(str(device))
    return join(names)


def title_line(report: RunReport) -> Text:
    """What was probed, in one line: ``stabcheck 0.1.0 probe report: builtin:cnn on
    builtin:digits (8,814 samples, 2,204 held out, 10 classes)``."""
    data = report.dataset
    text = Text(f"stabcheck {report.stabcheck_version} probe report", style="bold")
    model = report.config.get("model")
    what = f"{model} on {data.source}" if model else data.source
    kind = ("a regression target" if data.task == "regression"
            else f"{len(data.class_names)} classes")
    text.append(f": {what} ({data.n_samples:,} samples, {data.n_holdout:,} held out, {kind})",
                style="default")
    return text


def header_table(report: RunReport) -> Table:
    """Data set, samples, input and environment, one row each."""
    data = report.dataset
    env = report.environment
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("data set", Text(data.source))
    grid.add_row(
        "samples",
        Text(f"{data.n_samples:,} of {data.n_total:,} for probing, {data.n_holdout:,} held out"),
    )
    shape = "(" + ", ".join("None" if d is None else str(d) for d in data.input_shape)
    shape += ",)" if len(data.input_shape) == 1 else ")"
    if data.task == "regression":
        target = data.target or {}
        spread = (f": {target['min']:.4g} to {target['max']:.4g}, mean {target['mean']:.4g}, "
                  f"std {target['std']:.4g}") if "min" in target else ""
        columns = target.get("columns", 1)
        grid.add_row("input", Text(f"shape {shape}, regression target"
                                   f"{f' ({columns} columns)' if columns != 1 else ''}{spread}"))
    else:
        grid.add_row("input", Text(f"shape {shape}, {data.label_format} labels"))
    env_parts = [str(env["backend"])] if env.get("backend") else []
    devices = _describe_devices(env.get("devices"))
    if devices:
        env_parts.append(devices)
    if env.get("host_memory_bytes") is not None:
        env_parts.append(f"host memory {human_bytes(env['host_memory_bytes'])}")
    if env.get("memory_enforcement"):
        env_parts.append(f"memory budget enforced by {env['memory_enforcement']}")
    if executor_text(env):
        env_parts.append(str(executor_text(env)))
    if env_parts:
        grid.add_row("environment", Text(", ".join(env_parts)))
    return grid


def class_table(report: RunReport) -> Table | None:
    """Classes, their counts and shares, and each strategy's weights; None without
    class names."""
    data = report.dataset
    if not data.class_names:
        return None
    strategies = list(report.class_weight_table)
    total = sum(data.class_counts) or 1

    def weight(strategy: str, name: str) -> float | None:
        weights = report.class_weight_table[strategy]
        return 1.0 if weights is None else weights.get(name)

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("class", overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for strategy in strategies:
        table.add_column(strategy, justify="right")

    def add_class(index: int) -> None:
        name = data.class_names[index]
        count = data.class_counts[index]
        table.add_row(
            Text(name),
            f"{count:,}",
            f"{100 * count / total:.1f}%",
            *(fmt_weight(weight(s, name)) for s in strategies),
        )

    n = len(data.class_names)
    if n <= _MAX_CLASS_ROWS:
        for index in range(n):
            add_class(index)
        return table
    for index in range(_CLASS_HEAD):
        add_class(index)
    table.add_row("…", "…", "…", *("…" for _ in strategies))
    for index in range(n - _CLASS_HEAD, n):
        add_class(index)
    table.add_section()
    columns: list[list[float | None]] = [[float(c) for c in data.class_counts]]
    columns += [[weight(s, name) for name in data.class_names] for s in strategies]
    lows, highs, ratios = [], [], []
    for values in columns:
        present = [v for v in values if v is not None]
        low = min(present) if present else None
        high = max(present) if present else None
        lows.append(fmt_weight(low))
        highs.append(fmt_weight(high))
        ratio = high / low if low and high is not None and low > 0 else None
        ratios.append("—" if ratio is None else f"{fmt_number(ratio)}×")
    style = "dim"
    table.add_row(Text("min", style), lows[0], "", *lows[1:])
    table.add_row(Text("max", style), highs[0], "", *highs[1:])
    table.add_row(Text("max/min", style), ratios[0], "", *ratios[1:])
    return table
