"""pix2pixHD and SPADE training speed and memory, whole processes (``pixforge bench hd``).

facades labels -> photo at 256x256, batch 1, the paper's networks: pix2pixHD's global G (ngf 64, 4
downsamplings, 9 residual blocks), 2 PatchGANs, LSGAN + feature matching + VGG19 loss. The label maps are
snapped to the 12-class palette once and written with the photos in pix2pixHD's own layout
(``train_label/``, ``train_img/``), so every mode reads the same files the same way. VGG19 runs with random
weights (the ImageNet file cannot be downloaded here; its speed is the same). N steps per mode:

* ``reference``: NVIDIA/pix2pixHD's own ``train.py`` on a CPU (given ``--reference``: a checkout patched to run
  without CUDA, see BENCHMARKS.md), N pairs for one epoch; s/step from its ``loss_log.txt``;
* ``baseline``: pixforge's ``pix2pixhd`` recipe the reference's way: fp32, NCHW, per-parameter Adam, images
  decoded every step, default malloc;
* ``pixforge``: ``pixforge train --config facades_hd`` with its defaults (bf16 where native, channels_last,
  fused Adam, cached data);
* ``spade``: ``pixforge train --config facades_spade``, defaults: SPADE at the same size, batch and losses.

Each row: seconds per training step (median of the run's own log, first window left out), the whole process
from start to exit, and the training process's peak resident memory (from ``wait4``; the reference's loader
processes are separate and not added).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from pixforge.bench.child import reference_env, run_timed
from pixforge.bench.report import Row
from pixforge.bench.train import BASELINE

MODES = ("reference", "baseline", "pixforge", "spade")
PRESETS = {"baseline": "facades_hd", "pixforge": "facades_hd", "spade": "facades_spade"}
_REFERENCE_TIME = re.compile(r"\(epoch: \d+, iters: \d+, time: ([0-9.]+)\)")


def write_hd_facades(facades: Path, out: Path, count: int) -> Path:
    """The first ``count`` facades training pairs in pix2pixHD's layout: class-index label PNGs + photos."""
    import numpy as np
    from PIL import Image

    from pixforge.data.image_io import list_images
    from pixforge.data.palette import get_palette

    palette = get_palette("facades")
    for folder in ("train_label", "train_img"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for source in list_images(facades / "train")[:count]:
        ab = np.asarray(Image.open(source).convert("RGB"))
        half = ab.shape[1] // 2
        Image.fromarray(palette.snap(ab[:, half:])).save(out / "train_label" / f"{source.stem}.png")
        Image.fromarray(ab[:, :half]).save(out / "train_img" / f"{source.stem}.png")
    return out


def random_vgg19(path: Path) -> Path:
    import torch

    from pixforge.nn.vgg import VGG19Features

    torch.manual_seed(0)
    torch.save(VGG19Features().state_dict(), path)
    return path


def _sets(overrides: dict[str, Any]) -> list[str]:
    return [arg for section, fields in overrides.items() for key, value in fields.items()
            for arg in ("--set", f"{section}.{key}={json.dumps(value)}")]


def _pixforge(mode: str, data: Path, steps: int, work: Path, vgg: Path | None,
              extra: dict[str, Any]) -> dict[str, Any]:
    from pixforge.config import deep_merge, load_config
    from pixforge.train.metrics_log import read_metrics

    run = work / mode
    overrides: dict[str, Any] = {
        "data": {"layout": "pix2pixhd", "direction": "AtoB", "input_palette": None, "val_split": None,
                 "max_items": steps},
        "loss": {"vgg_loss": vgg is not None, **({"vgg_weights": str(vgg)} if vgg else {})},
        "train": {"max_steps": steps, "log_every": max(1, min(10, steps // 4)), "sample_every": 10**9,
                  "checkpoint_every": 10**9},
    }
    if mode == "baseline":
        overrides = deep_merge(overrides, BASELINE)
    overrides = deep_merge(overrides, extra)
    cmd = [sys.executable, "-m", "pixforge", "train", "--config", PRESETS[mode], "--data", str(data),
           "--out", str(run), *_sets(overrides)]
    ran = run_timed(cmd, work / f"{mode}.log")
    seconds, peak = ran.wall_s, ran.peak_rss_mb
    speeds = [r["it_s"] for r in read_metrics(run / "metrics.jsonl") if r.get("it_s")]
    written = load_config(run / "config.yaml").train
    return {"seconds": seconds, "peak_mb": peak, "s_step": 1 / median(speeds[1:] or speeds),
            "settings": f"precision {written.precision}, channels_last {written.channels_last}"}


def _reference(data: Path, steps: int, work: Path, checkout: Path, python: Path, vgg: bool) -> dict[str, Any]:
    cmd = [str(python), "train.py", "--name", "bench", "--dataroot", str(data), "--checkpoints_dir",
           str(work / "reference"), "--label_nc", "12", "--no_instance", "--gpu_ids", "-1", "--loadSize", "286",
           "--fineSize", "256", "--resize_or_crop", "resize_and_crop", "--niter", "1", "--niter_decay", "0",
           "--max_dataset_size", str(steps), "--no_html", "--print_freq", str(max(1, min(10, steps // 4)))]
    if not vgg:
        cmd.append("--no_vgg_loss")
    ran = run_timed(cmd, work / "reference.log", cwd=checkout, env=reference_env(work))
    seconds, peak = ran.wall_s, ran.peak_rss_mb
    times = [float(t) for t in _REFERENCE_TIME.findall((work / "reference" / "bench" / "loss_log.txt").read_text())]
    return {"seconds": seconds, "peak_mb": peak, "s_step": median(times[1:] or times) if times else None,
            "settings": "its train.py (fp32, CPU-patched), --no_instance --label_nc 12"}


def bench_hd(facades: Path, steps: int = 100, modes: tuple[str, ...] = ("baseline", "pixforge", "spade"),
             vgg: bool = True, reference: Path | None = None, reference_python: Path | None = None,
             overrides: dict[str, Any] | None = None) -> list[Row]:
    """Run ``modes`` (``reference`` needs ``reference`` and ``reference_python``); rows carry the ratio of
    s/step to the reference, or else to the baseline. ``overrides`` apply to the pixforge modes (tests)."""
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"bench hd: unknown modes {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if "reference" in modes and (reference is None or reference_python is None):
        raise ValueError("bench hd: the reference mode needs --reference DIR and --reference-python PYTHON")
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-hd-") as tmp:
        work = Path(tmp)
        data = write_hd_facades(facades, work / "data", steps)
        weights = random_vgg19(work / "vgg19_random.pth") if vgg else None
        results: dict[str, dict[str, Any]] = {}
        for mode in MODES:
            if mode not in modes:
                continue
            if mode == "reference":
                results[mode] = _reference(data, steps, work, reference, reference_python, vgg)  # type: ignore[arg-type]
            else:
                results[mode] = _pixforge(mode, data, steps, work, weights, overrides or {})
    base_name = next((m for m in ("reference", "baseline") if m in results and results[m]["s_step"]), None)
    base = results[base_name]["s_step"] if base_name else None
    rows = []
    for mode, r in results.items():
        detail = r["settings"] if mode in ("reference", "baseline") else \
            f"pixforge train --config {PRESETS[mode]}, defaults (resolved: {r['settings']})"
        rows.append(Row(bench="hd", mode=mode, detail=detail, value=r["s_step"] or float("nan"), unit="s/step",
                        ratio=base / r["s_step"] if base and r["s_step"] else None,
                        extra={"peak RSS MB": round(r["peak_mb"]), "whole process s": round(r["seconds"], 1)}))
    return rows
