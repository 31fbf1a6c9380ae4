"""Exact resume: a run killed with SIGKILL and resumed ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pixforge.runtime.checkpoint import load_checkpoint

STEPS, EVERY = 60, 20


def write_config(path: Path, data_root: Path) -> Path:
    cfg = {
        "name": "resume",
        # Dropout on and an image pool: both consume random numbers that must be restored exactly.
        "model": {"generator": "unet_64", "ngf": 16, "ndf": 16, "n_layers_d": 2, "dropout": True},
        "data": {"root": str(data_root), "preprocess": "resize_and_crop", "load_size": 72, "crop_size": 64},
        "train": {"batch_size": 2, "max_steps": STEPS, "checkpoint_every": EVERY, "deterministic": True,
                  "pool_size": 3, "log_every": 5, "sample_every": 1000, "keep_checkpoints": 5},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def pixforge(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pixforge", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def final_state(run: Path) -> dict:
    return load_checkpoint(run / "checkpoints" / f"step_{STEPS:08d}.safetensors")[1]


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, stripes_dataset):
    config = write_config(tmp_path / "cfg.yaml", stripes_dataset)
    finish(pixforge("train", "-c", str(config), "--out", str(tmp_path / "full")))

    killed = tmp_path / "killed"
    proc = pixforge("train", "-c", str(config), "--out", str(killed))
    first = killed / "checkpoints" / f"step_{EVERY:08d}.safetensors"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-run"
    assert not (killed / "checkpoints" / f"step_{STEPS:08d}.safetensors").exists()

    finish(pixforge("train", "--resume", str(killed)))

    full, resumed = final_state(tmp_path / "full"), final_state(killed)
    for net in ("G", "D"):
        assert full[net].keys() == resumed[net].keys()
        for key in full[net]:
            assert torch.equal(full[net][key], resumed[net][key]), f"{net}.{key} differs after resume"
    for net in ("G", "D"):
        for idx, slot in full["optim"][net]["state"].items():
            assert torch.equal(slot["exp_avg"], resumed["optim"][net]["state"][idx]["exp_avg"])
    logged = [yaml.safe_load(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and len(logged) == len(set(logged)), "metrics.jsonl repeats steps"
