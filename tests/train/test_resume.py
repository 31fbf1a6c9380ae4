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


def kill_then_resume(config: Path, tmp_path: Path) -> tuple[dict, dict, Path]:
    """The final state of an uninterrupted run and of one SIGKILLed after its first checkpoint, then resumed."""
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
    return final_state(tmp_path / "full"), final_state(killed), killed


def assert_same_training_state(full: dict, resumed: dict, networks: tuple[str, ...], optimizers: tuple[str, ...]
                               ) -> None:
    for net in networks:
        assert full[net].keys() == resumed[net].keys()
        for key in full[net]:
            assert torch.equal(full[net][key], resumed[net][key]), f"{net}.{key} differs after resume"
    for opt in optimizers:
        for idx, slot in full["optim"][opt]["state"].items():
            assert torch.equal(slot["exp_avg"], resumed["optim"][opt]["state"][idx]["exp_avg"])


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, stripes_dataset):
    config = write_config(tmp_path / "cfg.yaml", stripes_dataset)
    full, resumed, killed = kill_then_resume(config, tmp_path)
    assert_same_training_state(full, resumed, ("G", "D"), ("G", "D"))
    logged = [yaml.safe_load(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and len(logged) == len(set(logged)), "metrics.jsonl repeats steps"


@pytest.mark.slow
def test_cyclegan_resume_after_kill_matches_uninterrupted_run(tmp_path, unpaired_dataset):
    # Two image pools and a random B per step: all of it must come back exactly.
    cfg = {
        "name": "resume_cyclegan",
        "model": {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4, "ndf": 4},
        "data": {"root": str(unpaired_dataset), "load_size": 36, "crop_size": 32},
        "train": {"max_steps": STEPS, "checkpoint_every": EVERY, "deterministic": True, "pool_size": 3,
                  "log_every": 5, "sample_every": 1000, "keep_checkpoints": 5},
    }
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    full, resumed, _ = kill_then_resume(config, tmp_path)
    assert_same_training_state(full, resumed, ("G_A", "G_B", "D_A", "D_B"), ("G", "D"))
    for pool in ("fake_A", "fake_B"):
        ours, theirs = full["ranks"][0]["recipe"]["pools"][pool], resumed["ranks"][0]["recipe"]["pools"][pool]
        assert all(torch.equal(a, b) for a, b in zip(ours["images"], theirs["images"], strict=True))


@pytest.mark.slow
def test_cut_resume_after_kill_matches_uninterrupted_run(tmp_path, unpaired_dataset):
    # FastCUT draws a flip and patch locations every step from the recipe's own stream: it must come back too.
    cfg = {
        "name": "resume_cut",
        "model": {"kind": "cut", "cut_mode": "fastcut", "ngf": 4, "ndf": 4, "num_patches": 16, "nce_head_nc": 16},
        "data": {"root": str(unpaired_dataset), "load_size": 36, "crop_size": 32},
        "train": {"max_steps": STEPS, "checkpoint_every": EVERY, "deterministic": True, "log_every": 5,
                  "sample_every": 1000, "keep_checkpoints": 5},
    }
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    full, resumed, _ = kill_then_resume(config, tmp_path)
    assert_same_training_state(full, resumed, ("G", "F", "D"), ("G", "D"))
    assert torch.equal(full["ranks"][0]["recipe"]["rng"], resumed["ranks"][0]["recipe"]["rng"])


@pytest.mark.slow
def test_cgan_resume_after_kill_matches_uninterrupted_run(tmp_path, shapes_dataset):
    # Noise from torch's global generator and BatchNorm's running statistics: both must come back exactly.
    cfg = {
        "name": "resume_cgan",
        "model": {"kind": "cgan", "ngf": 8, "ndf": 8, "z_dim": 8},
        "data": {"root": str(shapes_dataset)},
        "train": {"batch_size": 4, "max_steps": STEPS, "checkpoint_every": EVERY, "deterministic": True,
                  "log_every": 5, "sample_every": 1000, "keep_checkpoints": 5},
    }
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    full, resumed, _ = kill_then_resume(config, tmp_path)
    assert_same_training_state(full, resumed, ("G", "D"), ("G", "D"))
