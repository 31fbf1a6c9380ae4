"""Quality at equal training time: pixforge with its defaults and the reference-way baseline each train facades
labels -> photo for the same wall-clock budget, then the judge scores both on the val split (FCN-scores).

Speed turns into quality only through time: a mode that takes more steps in the same minutes should label
better. Each mode is a whole ``pixforge train`` process stopped by ``train.max_seconds`` (data loading
included, a checkpoint at the stop), at the constant learning rate (a time budget has no known end for the
decay), then ``pixforge eval --judge``. Results are appended to ``WORK/results.jsonl`` one line per mode, so
a stopped benchmark continues where it left off.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from pixforge.bench.child import run_timed
from pixforge.bench.quality import read_results
from pixforge.bench.report import Row
from pixforge.bench.train import BASELINE, _sets

MODES = ("baseline", "pixforge")
SCORES = ("fcn_pixel_acc", "fcn_class_acc", "fcn_iou", "l1", "psnr", "ssim")


def mode_overrides(mode: str, seconds: float, seed: int) -> dict[str, Any]:
    """The ``--set`` fields of one mode: the time budget and a constant learning rate for both; the baseline
    adds the reference's way of running (BASELINE), pixforge keeps its defaults."""
    settings: dict[str, dict[str, Any]] = BASELINE if mode == "baseline" else {"train": {}, "data": {}}
    train = {"seed": seed, "max_seconds": seconds, "n_epochs": 100_000, "n_epochs_decay": 0,
             "checkpoint_every": 10**9, "sample_every": 10**9, "val_every": None, **settings["train"]}
    # No validation pass inside the budget: the judge scores the val split afterwards.
    return {"train": train, "data": {**settings["data"], "val_split": None}}


def run_equal_time(facades: Path, work: Path, judge: Path, seconds: float = 900, modes: tuple[str, ...] = MODES,
                   seed: int = 0, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train and judge every mode not yet in ``work/results.jsonl``; return all records for this budget.

    ``extra``: more ``--set`` fields for every mode (tests shrink the model and images with it)."""
    from pixforge.config import deep_merge

    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    done = {(r["mode"], r["seconds"], r["seed"]) for r in read_results(results)}
    cli = [sys.executable, "-m", "pixforge"]
    for mode in modes:
        if (mode, seconds, seed) in done:
            continue
        run = work / f"{mode}-{seconds:g}s-seed{seed}"
        if run.exists():  # a half-finished earlier attempt: its checkpoint is not from this budget's end
            raise ValueError(f"{run}: left over from an interrupted run; remove it to train this mode again")
        run.mkdir(parents=True)
        overrides = deep_merge(mode_overrides(mode, seconds, seed), extra or {})
        train_s = run_timed([*cli, "train", "--config", "facades", "--data", str(facades), "--out",
                             str(run / "run"), *_sets(overrides)], run / "train.log").wall_s
        scores = run / "eval.json"
        run_timed([*cli, "eval", str(run / "run"), "--data", str(facades), "--split", "val", "--judge",
                   str(judge), "--out", str(run / "report"), "--json", str(scores), "--no-learned",
                   "--device", "cpu"], run / "eval.log")
        record = {"mode": mode, "seconds": seconds, "seed": seed, "train_s": round(train_s, 1),
                  "steps": _last_step(run / "run" / "metrics.jsonl"), "settings": _settings(run / "run"),
                  **json.loads(scores.read_text()), "date": time.strftime("%Y-%m-%d %H:%M")}
        with results.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
    return [r for r in read_results(results) if r["seconds"] == seconds and r["seed"] == seed]


def _settings(run: Path) -> str:
    """What the run actually used (``auto`` resolved), from the config.yaml it wrote."""
    from pixforge.config import load_config

    t, d = load_config(run / "config.yaml").train, load_config(run / "config.yaml").data
    return (f"precision {t.precision}, channels_last {t.channels_last}, fused_adam {t.fused_adam}, "
            f"keep_freed_memory {t.keep_freed_memory}, cache {d.cache}")


def _last_step(metrics: Path) -> int:
    steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def equal_time_rows(records: list[dict[str, Any]]) -> list[Row]:
    """One row per mode (FCN per-pixel accuracy as the value, × the baseline's), then the real-photo bound."""
    by_mode = {r["mode"]: r for r in records}
    base = by_mode.get("baseline")
    rows = []
    for mode in MODES:
        r = by_mode.get(mode)
        if r is None:
            continue
        rows.append(Row(bench="equal-time", mode=mode, detail=r.get("settings", ""), value=r["fcn_pixel_acc"],
                        unit="FCN per-pixel acc.",
                        ratio=r["fcn_pixel_acc"] / base["fcn_pixel_acc"] if base else None,
                        extra={"steps in budget": r["steps"], "train s (whole process)": r["train_s"],
                               **{k: round(r[k], 4) for k in SCORES[1:] if r.get(k) is not None}}))
    if records and records[0].get("real_fcn_pixel_acc") is not None:
        r = records[0]
        rows.append(Row(bench="equal-time", mode="real photos", detail="the judge on the real val photos (upper bound)",
                        value=r["real_fcn_pixel_acc"], unit="FCN per-pixel acc.",
                        extra={"fcn_class_acc": round(r["real_fcn_class_acc"], 4),
                               "fcn_iou": round(r["real_fcn_iou"], 4)}))
    return rows


def check_judge(judge: Path) -> None:
    """Fail before training anything if the judge is missing (training takes the whole budget first)."""
    from pixforge.nn.segmentation import JUDGE_FILE

    file = judge / JUDGE_FILE if judge.is_dir() else judge
    if not file.is_file():
        raise ValueError(f"{judge}: no judge found; train one first: pixforge judge train --data FACADES --out "
                         f"{judge}")
