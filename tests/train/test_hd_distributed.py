"""pix2pixHD under ``torchrun``: the coarse-to-fine switch re-wraps G for DDP, and 2 processes of batch 1 still
train the same weights as 1 process of batch 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pixforge.runtime.checkpoint import load_checkpoint


def blocks_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("train_label", "train_img"):
        (root / folder).mkdir(parents=True)
    colours = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)], np.uint8)
    for i in range(4):
        classes = np.zeros((32, 32), np.uint8)
        y, x = rng.integers(0, 16, 2)
        classes[y:y + 16, x:x + 16] = 1 + i % 2
        Image.fromarray(classes).save(root / "train_label" / f"{i}.png")
        Image.fromarray(colours[classes]).save(root / "train_img" / f"{i}.png")
    return root


def run(config: Path, out: Path, procs: int) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    runner = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    done = subprocess.run([sys.executable, *runner, "-m", "pixforge", "train", "-c", str(config), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_local_generator_unfreezes_its_global_part_under_ddp_as_in_one_process(tmp_path):
    data = blocks_dataset(tmp_path / "data")
    base = {
        "name": "hd_ddp",
        "model": {"kind": "pix2pixhd", "generator": "local", "discriminator": "multiscale", "norm": "instance",
                  "ngf": 4, "ndf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1,
                  "n_layers_d": 2, "dropout": False},
        "data": {"root": str(data), "layout": "pix2pixhd", "label_nc": 3, "preprocess": "none", "load_size": 32,
                 "crop_size": 32, "flip": False, "num_workers": 0, "val_split": None},
        "loss": {"gan_mode": "lsgan", "vgg_loss": False},
        # 4 items: 2 steps per epoch at a global batch of 2; the global part joins at epoch 1 (step 2).
        "train": {"max_steps": 4, "n_epochs": 2, "n_epochs_decay": 0, "niter_fix_global": 1, "precision": "fp32",
                  "deterministic": True, "log_every": 1, "sample_every": 1000, "checkpoint_every": 2,
                  "keep_checkpoints": 5},
    }
    states = {}
    for procs, batch in ((2, 1), (1, 2)):
        cfg = {**base, "train": {**base["train"], "batch_size": batch}}
        path = tmp_path / f"p{procs}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        run(path, tmp_path / f"p{procs}", procs)
        states[procs] = {s: load_checkpoint(tmp_path / f"p{procs}" / "checkpoints" / f"step_{s:08d}.safetensors")[1]
                         for s in (2, 4)}
    for procs in (1, 2):  # frozen in epoch 0, trained in epoch 1, in both
        g2, g4 = states[procs][2]["G"], states[procs][4]["G"]
        assert not torch.equal(g2["model.1.weight"], g4["model.1.weight"])
    # DDP averages the ranks' gradients, one process takes the batch mean: equal up to float order. Adam's
    # first steps move a weight by ~lr whatever its gradient's size, so where a gradient is ~0 the rounding
    # decides a step's sign: a few elements differ by a fraction of lr (2e-4). A rank that stepped with its own
    # gradient (a parameter DDP does not reduce) would differ by about lr almost everywhere. Biases right before
    # an instance norm have a true gradient of 0 (the norm cancels them): Adam steps them on rounding noise, so
    # only weights are compared.
    for key, ours in states[2][4]["G"].items():
        if ours.ndim > 1:
            diff = (ours - states[1][4]["G"][key]).abs()
            assert float(diff.max()) < 1e-4 and float(diff.mean()) < 1e-6, (key, float(diff.max()))
