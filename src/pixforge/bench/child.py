"""Benchmarks run what they measure as whole processes: a user compares the time from command to result,
start-up included, and allocator settings and warm caches are per process."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRun:
    wall_s: float
    cpu_s: float
    """User + system time of the process and the children it waited for (the reference's loader workers):
    comparable even while other work shares the machine, which wall time is not."""
    peak_rss_mb: float


def run_timed(cmd: list[str], log: Path, **kwargs: Any) -> ProcessRun:
    """Run ``cmd`` to completion with its output in ``log``; a failure is an error naming the log."""
    start = time.perf_counter()
    with log.open("w") as f:
        process = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, **kwargs)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {process.returncode}); see {log}")
    return ProcessRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def reference_env(folder: Path) -> dict[str, str]:
    """The environment the reference's scripts run in here: an empty ``wandb`` module on the path (they import
    it at module level and never use it offline)."""
    stub = folder / "stub"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "wandb.py").write_text("")
    return {**os.environ, "PYTHONPATH": str(stub)}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
