"""``pixforge demo``: the whole path (data -> train -> translate -> report) in a few minutes, offline.

The data is procedural (label maps of little buildings -> shaded renderings, made in code), so the demo
needs nothing but the package: no download, no copyrighted images, no people.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pixforge.config import ConfigError, load_config
from pixforge.data.datasets import PairedDataset
from pixforge.data.image_io import from_tensor
from pixforge.data.procedural import write_blocks_dataset
from pixforge.eval.report import write_results_page
from pixforge.infer.translator import Translator
from pixforge.train.loop import train
from pixforge.train.metrics_log import read_metrics

DEMO_STEPS = 2000
"""About 2-3 minutes on a 2-core CPU: enough for bricks, windows and sky to appear."""


def _clear_previous_demo(run_dir: Path) -> None:
    """A demo is always a fresh run: replace an earlier demo's run, but nothing else that sits there."""
    if not run_dir.exists():
        return
    try:
        previous = load_config(run_dir / "config.yaml").name
    except ConfigError:
        previous = None
    if previous != "demo":
        raise ValueError(f"{run_dir}: exists and is not an earlier demo run; choose another --out")
    shutil.rmtree(run_dir)


def run_demo(out: str | Path, steps: int | None = None, n_train: int = 400, n_val: int = 12) -> Path:
    out = Path(out)
    data_root = write_blocks_dataset(out / "data", n_train=n_train, n_val=n_val, size=64, seed=0)
    cfg = load_config("preset:demo", {
        "data": {"root": str(data_root)},
        "train": {"max_steps": steps or DEMO_STEPS, "val_every": max(1, (steps or DEMO_STEPS) // 6)},
    })
    run_dir = out / "run"
    _clear_previous_demo(run_dir)
    started = time.perf_counter()
    result = train(cfg, run_dir)
    minutes = (time.perf_counter() - started) / 60

    translator = Translator.from_pretrained(run_dir)
    held_out = PairedDataset(cfg.data, cfg.data.val_split, train=False)
    items = [held_out[i] for i in range(len(held_out))]
    outputs = translator.predict_batch([item["input"] for item in items])
    rows = [(from_tensor(item["input"]), from_tensor(fake), from_tensor(item["target"]))
            for item, fake in zip(items, outputs, strict=True)]
    notes = {
        "task": "label map -> rendering (procedural, made in code)",
        "model": f"{cfg.model.generator} (ngf {cfg.model.ngf}) + {cfg.model.discriminator} "
                 f"(n_layers {cfg.model.n_layers_d})",
        "training": f"{result.step} steps, batch {cfg.train.batch_size}, {minutes:.1f} min on "
                    f"{translator.device.type}",
        "held-out samples": f"{len(rows)} (never seen in training)",
        "checkpoint": str(result.checkpoint),
    }
    return write_results_page(out, rows, read_metrics(run_dir / "metrics.jsonl"),
                              title="pixforge demo: label maps to renderings", notes=notes)
