"""The facades_hd and facades_spade presets on the real facades data, shrunk to run on a CPU (acceptance 3)."""

from __future__ import annotations

import pytest
import torch

from pixforge.config import load_config
from pixforge.runtime.checkpoint import load_checkpoint
from pixforge.train.loop import train
from pixforge.train.metrics_log import read_metrics


@pytest.mark.slow
def test_facades_hd_validation_l1_falls_in_a_few_hundred_cpu_steps(tmp_path, facades):
    """The preset (palette labels -> one-hot -> global G, multiscale D, LSGAN + feature matching) at 128x128,
    ngf 16 and 3 residual blocks, 200 steps of batch 2 on the CPU (50 training pairs, 50 val pairs)."""
    cfg = load_config("facades_hd", {
        "model": {"ngf": 16, "ndf": 16, "n_blocks_global": 3},
        "data": {"root": str(facades), "load_size": 143, "crop_size": 128, "max_items": 50},
        "loss": {"vgg_loss": False},  # the ImageNet file cannot be downloaded here (its code path is tested)
        "train": {"batch_size": 2, "max_steps": 200, "val_every": 100, "log_every": 50, "sample_every": 1000,
                  "checkpoint_every": 1000, "lr": 0.0005},
    })
    train(cfg, tmp_path / "run")
    val = [r["val_l1"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val_l1" in r]
    # Measured on the shared 2-core machine: 0.500 -> 0.404 (step 100) -> 0.383. pix2pixHD has no L1 term (GAN,
    # feature matching and VGG only), so this early it is not yet clearly below the best constant colour.
    assert val[-1] < 0.9 * val[0], val


@pytest.mark.slow
def test_facades_spade_trains_and_a_resumed_run_ends_with_the_same_weights(tmp_path, facades):
    cfg = load_config("facades_spade", {
        "model": {"ngf": 4, "ndf": 8, "spade_hidden": 16},
        "data": {"root": str(facades), "load_size": 72, "crop_size": 64, "max_items": 8},
        "loss": {"vgg_loss": False},
        "train": {"batch_size": 2, "max_steps": 4, "log_every": 1, "sample_every": 1000, "checkpoint_every": 2,
                  "keep_checkpoints": 5, "deterministic": True},
    })
    train(cfg, tmp_path / "run")
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "G_GAN" in r]
    assert len(records) == 4 and all(abs(r["D_real"]) < 1e3 for r in records)
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    (resumed / "config.yaml").write_text((tmp_path / "run" / "config.yaml").read_text())
    step2 = tmp_path / "run" / "checkpoints" / "step_00000002.safetensors"
    (resumed / "checkpoints" / step2.name).write_bytes(step2.read_bytes())
    train(cfg, resumed, resume=True)
    expected = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000004.safetensors")[1]
    actual = load_checkpoint(resumed / "checkpoints" / "step_00000004.safetensors")[1]
    for part in ("G", "D"):
        for key, value in expected[part].items():
            torch.testing.assert_close(actual[part][key], value, rtol=0, atol=0, msg=f"{part}.{key}")
