"""Training speed end to end: ``pixforge train`` with no flags beside the reference's way, whole processes.

What a user compares is the wall time from typing the command to getting a checkpoint, so every mode is a
whole process timed from start to exit (imports, data loading, model set-up, training, the final
checkpoint). facades labels -> photo, unet_256 + 70x70 PatchGAN, batch 1, N steps:

* ``reference``: the reference's own ``train.py`` (its defaults, 4 loader processes), N facades pairs for
  one epoch = N iterations; run when a checkout is given.
* ``baseline``: pixforge's loop run the reference's way (fp32, NCHW, per-parameter Adam, JPEG decoded every
  step, default malloc): a stand-in where no reference checkout is at hand.
* ``pixforge``: ``pixforge train --config facades --data DIR --set train.max_steps=N``, nothing else.

Speed per step is also read from pixforge's own log (median of its it/s records after the first window).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from pixforge.bench.child import reference_env, run_timed
from pixforge.bench.report import Row

# The reference's way: fp32, NCHW, per-parameter Adam, JPEG decoded every step, eager, default malloc.
BASELINE = {
    "train": {"precision": "fp32", "channels_last": False, "fused_adam": False, "keep_freed_memory": False,
              "step_in_backward": False},
    "data": {"cache": False, "num_workers": 0},
}


def _sets(overrides: dict[str, Any]) -> list[str]:
    return [arg for section, fields in overrides.items() for key, value in fields.items()
            for arg in ("--set", f"{section}.{key}={json.dumps(value)}")]


def _pixforge(mode: str, facades: Path, steps: int, work: Path, extra: dict[str, Any]) -> dict[str, Any]:
    from pixforge.config import deep_merge

    run = work / mode
    overrides: dict[str, Any] = deep_merge({"train": {"max_steps": steps}}, extra)
    if mode == "baseline":
        overrides = deep_merge(overrides, BASELINE)
    seconds = run_timed([sys.executable, "-m", "pixforge", "train", "--config", "facades", "--data", str(facades),
                         "--out", str(run), *_sets(overrides)], work / f"{mode}.log").wall_s
    from pixforge.config import load_config
    from pixforge.train.metrics_log import read_metrics

    speeds = [r["it_s"] for r in read_metrics(run / "metrics.jsonl") if r.get("it_s")]
    written = load_config(run / "config.yaml").train
    return {"seconds": seconds, "s_step": 1 / median(speeds[1:] or speeds),
            "settings": f"precision {written.precision}, channels_last {written.channels_last}"}


def _reference(facades: Path, steps: int, work: Path, checkout: Path, python: Path) -> dict[str, Any]:
    cmd = [str(python), "train.py", "--dataroot", str(facades), "--name", "bench", "--model", "pix2pix",
           "--direction", "BtoA", "--checkpoints_dir", str(work / "reference"), "--max_dataset_size", str(steps),
           "--n_epochs", "1", "--n_epochs_decay", "0", "--no_html", "--display_freq", "100000",
           "--print_freq", "10"]
    seconds = run_timed(cmd, work / "reference.log", cwd=checkout, env=reference_env(work)).wall_s
    return {"seconds": seconds, "s_step": None, "settings": "its train.py defaults (fp32, 4 loader processes)"}


def bench_train(facades: Path, steps: int = 200, baseline: bool = True, reference: Path | None = None,
                reference_python: Path | None = None, overrides: dict[str, Any] | None = None) -> list[Row]:
    """Reference (if given), baseline (unless ``baseline=False``), then pixforge with no flags.

    ``overrides`` (config sections) apply to both pixforge modes: for tests of this code on tiny models.
    """
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-train-") as tmp:
        work = Path(tmp)
        results: dict[str, dict[str, Any]] = {}
        if reference is not None:
            if reference_python is None:
                raise ValueError("--reference needs --reference-python (the Python that runs the reference)")
            results["reference"] = _reference(facades, steps, work, reference, reference_python)
        if baseline:
            results["baseline"] = _pixforge("baseline", facades, steps, work, overrides or {})
        results["pixforge"] = _pixforge("pixforge", facades, steps, work, overrides or {})
    base_name = "reference" if "reference" in results else "baseline" if "baseline" in results else None
    base = results[base_name]["seconds"] if base_name else None
    rows = []
    for mode, r in results.items():
        detail = "pixforge train --config facades, no flags" if mode == "pixforge" else r["settings"]
        if mode == "pixforge":
            detail += f" (resolved: {r['settings']})"
        rows.append(Row(bench="train", mode=mode, detail=detail, value=r["seconds"], unit="s whole process",
                        ratio=base / r["seconds"] if base else None,
                        extra={"s/step (own log)": round(r["s_step"], 3) if r["s_step"] else "",
                               "× baseline": f"{results['baseline']['seconds'] / r['seconds']:.2f}×"
                               if "baseline" in results else ""}))
    return rows
