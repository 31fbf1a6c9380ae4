"""Each benchmark mode runs in a fresh process (allocator settings and warm caches are per process) and
hands back a JSON report."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_child(module: str, args: list[str], report: Path, quiet: bool = False) -> dict[str, Any]:
    """``python -m module *args`` to completion; the child writes its JSON report to ``report``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "-m", module, *args, str(report)], check=True, env=env,
                   stdout=subprocess.DEVNULL if quiet else None)
    return json.loads(report.read_text())


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
