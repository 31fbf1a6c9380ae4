"""CycleGAN training speed and memory: ``pixforge train --config horse2zebra`` beside the reference's
``train.py --model cycle_gan``, whole processes, horse2zebra at the defaults (resnet_9blocks, ngf 64, 256²,
batch 1).

Each mode runs twice, for n1 and n2 iterations; s/iteration = (T(n2) − T(n1)) / (n2 − n1), so start-up
(imports, scanning 2,400 files, building the networks, the final checkpoint) cancels out. Peak memory is the
``ru_maxrss`` that ``wait4`` reports: the largest resident set of the process or any descendant it waited for
(the reference's loader workers are separate, smaller processes), not their sum.

* ``reference``: its own ``train.py`` with its defaults (fp32, 4 loader processes); ``--max_dataset_size N``
  keeps N images of each domain, so its one epoch is N iterations.
* ``pixforge``: ``pixforge train --config horse2zebra --data DIR --set train.max_steps=N``, nothing else.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pixforge.bench.child import ProcessRun, reference_env, run_timed
from pixforge.bench.report import Row


def parse_steps(text: str) -> tuple[int, int]:
    """``"3,8"`` -> (3, 8): two iteration counts, the second larger."""
    try:
        n1, n2 = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--steps '{text}': expected two iteration counts, e.g. 3,8") from None
    if not 0 < n1 < n2:
        raise ValueError(f"--steps '{text}': expected 0 < first < second")
    return n1, n2


def _sets(overrides: dict[str, Any]) -> list[str]:
    return [arg for section, fields in overrides.items() for key, value in fields.items()
            for arg in ("--set", f"{section}.{key}={json.dumps(value)}")]


def _pixforge(data: Path, steps: int, work: Path, overrides: dict[str, Any]) -> ProcessRun:
    from pixforge.config import deep_merge

    sets = _sets(deep_merge({"train": {"max_steps": steps}}, overrides))
    return run_timed([sys.executable, "-m", "pixforge", "train", "--config", "horse2zebra", "--data", str(data),
                      "--out", str(work / f"pixforge_{steps}"), *sets], work / f"pixforge_{steps}.log")


def _reference(data: Path, steps: int, work: Path, checkout: Path, python: Path, extra: list[str]) -> ProcessRun:
    cmd = [str(python), "train.py", "--dataroot", str(data), "--name", f"bench{steps}", "--model", "cycle_gan",
           "--checkpoints_dir", str(work / "reference"), "--max_dataset_size", str(steps), "--n_epochs", "1",
           "--n_epochs_decay", "0", "--no_html", "--display_freq", "100000", "--print_freq", "1", *extra]
    return run_timed(cmd, work / f"reference_{steps}.log", cwd=checkout, env=reference_env(work))


def bench_cyclegan(data: Path, steps: tuple[int, int] = (3, 8), reference: Path | None = None,
                   reference_python: Path | None = None, overrides: dict[str, Any] | None = None,
                   reference_args: list[str] | None = None) -> list[Row]:
    """Reference (if given), then pixforge with no flags, each at both iteration counts.

    ``overrides`` (pixforge config sections) and ``reference_args`` (its options) shrink the model for tests."""
    if reference is not None and reference_python is None:
        raise ValueError("--reference needs --reference-python (the Python that runs the reference)")
    n1, n2 = steps
    runs: dict[str, tuple[ProcessRun, ProcessRun]] = {}
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-cyclegan-") as tmp:
        work = Path(tmp)
        if reference is not None and reference_python is not None:
            runs["reference"] = tuple(_reference(data, n, work, reference, reference_python, reference_args or [])
                                      for n in steps)  # type: ignore[assignment]
        runs["pixforge"] = tuple(_pixforge(data, n, work, overrides or {}) for n in steps)  # type: ignore[assignment]
    per_step = {mode: (b.wall_s - a.wall_s) / (n2 - n1) for mode, (a, b) in runs.items()}
    base = per_step.get("reference")
    rows = []
    for mode, (a, b) in runs.items():
        detail = "pixforge train --config horse2zebra, no flags" if mode == "pixforge" else \
            "train.py --model cycle_gan, its defaults (fp32, 4 loader processes)"
        rows.append(Row(bench="cyclegan", mode=mode, detail=detail, value=per_step[mode], unit="s/iteration",
                        ratio=base / per_step[mode] if base else None,
                        extra={"peak RSS MB": round(max(a.peak_rss_mb, b.peak_rss_mb)),
                               f"wall s ({n1} / {n2} it)": f"{a.wall_s:.1f} / {b.wall_s:.1f}"}))
    return rows

