"""Training throughput: pixforge's default fast settings against the reference's way, side by side.

Each mode runs in its own process (allocator settings are per process) through the real training loop
on the same data for the same number of steps; speed is the median of the loop's own ``it_s`` records
after warm-up, quality the mean L1 on held-out pairs after those steps.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from pixforge.bench.child import peak_rss_mb, run_child
from pixforge.bench.report import Row

# The reference's way: fp32, NCHW, per-parameter Adam, JPEG decoded every step, eager, default malloc.
BASELINE = {
    "train": {"precision": "fp32", "channels_last": False, "fused_adam": False, "keep_freed_memory": False},
    "data": {"cache": False, "num_workers": 0},
}


def fast_settings(device: str) -> dict[str, Any]:
    """pixforge's defaults for speed on this machine: bf16 where the hardware has it, channels_last."""
    from pixforge.runtime.device import cpu_has_native_bf16

    bf16 = device == "cuda" or cpu_has_native_bf16()
    return {"train": {"precision": "bf16" if bf16 else "fp32", "channels_last": True, "fused_adam": True,
                      "keep_freed_memory": True}, "data": {"cache": True}}


def model_config(data_root: Path, steps: int, size: int, batch: int) -> dict[str, Any]:
    """unet_256 + 70x70 PatchGAN at ``size``, facades labels -> photo, logging every 10 steps."""
    return {
        "name": "bench",
        "model": {"generator": f"unet_{size}", "discriminator": "patchgan"},  # unet_256 at 256²
        "data": {"root": str(data_root), "direction": "BtoA", "preprocess": "resize_and_crop",
                 "load_size": size * 286 // 256, "crop_size": size, "max_items": 200, "val_split": None},
        "train": {"batch_size": batch, "max_steps": steps, "log_every": 10, "sample_every": 10**9,
                  "checkpoint_every": 10**9, "deterministic": False},
    }


def _child(config: dict[str, Any], run_dir: Path, val_root: Path | None, out: Path) -> None:
    """Runs in a fresh process: train, then report speed, memory and held-out L1 as JSON."""
    import torch

    from pixforge.config import config_from_dict
    from pixforge.data.datasets import PairedDataset
    from pixforge.train.loop import train
    from pixforge.train.metrics_log import read_metrics
    from pixforge.train.samples import mean_l1

    cfg = config_from_dict(config)
    result = train(cfg, run_dir)
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("it_s")]
    speeds = [r["it_s"] for r in records[1:]] or [r["it_s"] for r in records]  # first window = warm-up
    report: dict[str, Any] = {"it_s": median(speeds), "windows": len(speeds),
                              "final_G_L1": records[-1].get("G_L1") if records else None,
                              "peak_rss_mb": peak_rss_mb()}
    if torch.cuda.is_available():
        report["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if val_root is not None:
        from pixforge.infer.translator import Translator

        t = Translator.from_pretrained(result.checkpoint, device="auto")
        data_cfg = cfg.data.model_copy(update={"root": val_root, "max_items": None})
        held_out = PairedDataset(data_cfg, "val", train=False)
        report["val_l1"] = mean_l1(t.generator, held_out, t.device, "fp32", limit=50)
    out.write_text(json.dumps(report))


def run_mode(name: str, overrides: dict[str, Any], data_root: Path, steps: int, size: int, batch: int,
             quality: bool) -> dict[str, Any]:
    from pixforge.config import deep_merge

    config = deep_merge(model_config(data_root, steps, size, batch), overrides)
    with tempfile.TemporaryDirectory(prefix=f"pixforge-bench-{name}-") as tmp:
        args = [json.dumps(config), str(Path(tmp) / "run"), str(data_root) if quality else ""]
        report = run_child("pixforge.bench.train", args, Path(tmp) / "report.json", quiet=True)
    report["mode"] = name
    return report


def bench_train(data_root: Path, steps: int = 200, size: int = 256, batch: int = 1, device: str = "cpu",
                quality: bool = True, baseline: bool = True) -> list[Row]:
    """Baseline first (unless ``baseline=False``), then pixforge's fast settings; rows carry the ratio."""
    fast_config = fast_settings(device)
    base = run_mode("baseline", BASELINE, data_root, steps, size, batch, quality) if baseline else None
    fast = run_mode("pixforge", fast_config, data_root, steps, size, batch, quality)
    rows = []
    for report in (base, fast):
        if report is None:
            continue
        detail = ", ".join(f"{k} {v}" for k, v in fast_config["train"].items()) \
            if report is fast else "fp32, NCHW, per-parameter Adam, JPEG decode every step, eager"
        rows.append(Row(
            bench="train", mode=report["mode"], detail=detail,
            value=report["it_s"] * batch, unit="images/s",
            ratio=report["it_s"] / base["it_s"] if base else None,
            extra={"s/step": round(1 / report["it_s"], 4), "peak RSS MB": round(report["peak_rss_mb"]),
                   **({"peak GPU MB": round(report["peak_gpu_mb"])} if "peak_gpu_mb" in report else {}),
                   **({f"val L1 @{steps}": round(report["val_l1"], 4)} if "val_l1" in report else {}),
                   "final G_L1": report["final_G_L1"]},
        ))
    return rows


if __name__ == "__main__":
    config_json, run_dir, val_root, out = sys.argv[1:5]
    _child(json.loads(config_json), Path(run_dir), Path(val_root) if val_root else None, Path(out))
