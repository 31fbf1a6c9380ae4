"""Run the benchmarks from a checkout: ``python -m benchmarks.run train translate``.

The code lives in ``pixforge.bench`` (so an installed package has ``pixforge bench`` too); results are
appended to BENCHMARKS.md with machine, torch version, command and date.
"""

from __future__ import annotations

import sys

from pixforge.cli import app

if __name__ == "__main__":
    for name in sys.argv[1:] or ["train", "translate"]:
        app(["bench", name], standalone_mode=False)
