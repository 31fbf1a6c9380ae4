"""Benchmark rows: printed as a table and appended to BENCHMARKS.md with machine, torch, command and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    bench: str
    mode: str
    detail: str
    value: float
    unit: str
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads{gpu}"


def render_markdown(title: str, rows: list[Row], command: str | None = None,
                    ratio_label: str = "× baseline") -> str:
    import torch

    command = command or "pixforge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    extras = list(dict.fromkeys(k for r in rows for k in r.extra))  # in the order the rows give them
    head = ["bench", "mode", "value", ratio_label, *extras, "settings"]
    lines = [
        f"### {title}",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}",
        f"- command: `{command}`",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        cells = [r.bench, r.mode, f"{r.value:.3g} {r.unit}", ratio, *(str(r.extra.get(k, "")) for k in extras),
                 r.detail]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def print_rows(rows: list[Row], ratio_label: str = "× baseline") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("bench", "mode", "value", ratio_label, "details"):
        table.add_column(col)
    for r in rows:
        details = ", ".join(f"{k} {v}" for k, v in r.extra.items())
        table.add_row(r.bench, r.mode, f"{r.value:.3g} {r.unit}", f"{r.ratio:.2f}×" if r.ratio else "", details)
    Console().print(table)


def append_markdown(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `pixforge bench` (`benchmarks/`); newest last.\n\n")
    with path.open("a") as f:
        f.write("\n" + text)
