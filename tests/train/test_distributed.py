"""Training under ``torchrun``: W processes of batch b are one run of batch W*b, and they resume exactly.

Each test starts real ``torchrun`` process groups (gloo on CPU) running ``python -m pixforge train``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import torch
import yaml

from pixforge.config import config_from_dict
from pixforge.data.datasets import PairedDataset
from pixforge.nn.build import build_discriminator, build_generator
from pixforge.runtime.checkpoint import load_checkpoint

SMALL_NETS = {"ngf": 8, "ndf": 8, "n_layers_d": 2, "norm": "instance"}


def write_config(path: Path, data_root: Path, model: dict, data: dict, train: dict) -> Path:
    cfg = {
        "name": "ddp",
        "model": {**SMALL_NETS, **model},
        # A random crop and flip per sample: the ranks' shards must get the augmentation one process would.
        "data": {"root": str(data_root), "preprocess": "resize_and_crop", "num_workers": 0, **data},
        "train": {"deterministic": True, "log_every": 1, "sample_every": 1000, "keep_checkpoints": 5, **train},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def launch(*args: str, procs: int = 1) -> subprocess.Popen:
    """``python -m pixforge ARGS``, under ``torchrun --standalone`` (a free port of its own) when procs > 1."""
    # One thread per process: the 2-process and 1-process runs then sum in the same order within a rank.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    runner = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    return subprocess.Popen([sys.executable, *runner, "-m", "pixforge", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (from /proc: torchrun starts each worker in its own session)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every worker, as if the machine lost power."""
    for pid in [proc.pid, *descendants(proc.pid)]:  # all found before any dies (orphans lose their parent)
        with suppress(ProcessLookupError):  # a worker's own helpers share its group, so have no group id
            os.killpg(pid, signal.SIGKILL)  # each worker leads a session (and group) of its own
    proc.wait()


@contextmanager
def started(*args: str, procs: int) -> Iterator[subprocess.Popen]:
    """A run that never outlives the test, whatever the test's outcome."""
    proc = launch(*args, procs=procs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_tree(proc)
        if proc.stdout:
            proc.stdout.close()


def run(*args: str, procs: int) -> None:
    with started(*args, procs=procs) as proc:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out


def final_state(run_dir: Path, step: int) -> tuple[dict, dict]:
    return load_checkpoint(run_dir / "checkpoints" / f"step_{step:08d}.safetensors")


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def networks(config: dict, state: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    cfg = config_from_dict(config)
    G, D = build_generator(cfg), build_discriminator(cfg)
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    return G.eval(), D.eval()


@pytest.mark.slow
def test_two_processes_of_batch_one_match_one_process_of_batch_two(tmp_path, stripes_dataset):
    steps = 8
    # Instance norm: BatchNorm would see one sample per rank (SyncBatchNorm needs GPUs). No dropout: its
    # masks are drawn per rank, so they cannot match one process's.
    model = {"generator": "unet_32", "dropout": False}
    data = {"load_size": 36, "crop_size": 32}
    # fp32: the two runs sum in different orders, and bf16's rounding would swamp the 1e-4 comparison.
    train = {"max_steps": steps, "checkpoint_every": 4, "precision": "fp32", "val_every": 4}
    ddp_cfg = write_config(tmp_path / "b1.yaml", stripes_dataset, model, data, {**train, "batch_size": 1})
    one_cfg = write_config(tmp_path / "b2.yaml", stripes_dataset, model, data, {**train, "batch_size": 2})
    run("train", "-c", str(ddp_cfg), "--out", str(tmp_path / "ddp"), procs=2)
    run("train", "-c", str(one_cfg), "--out", str(tmp_path / "one"), procs=1)

    (config, ddp), (_, one) = final_state(tmp_path / "ddp", steps), final_state(tmp_path / "one", steps)
    # DDP averages the ranks' gradients; one process takes the batch mean: equal up to float order.
    # Biases right before an instance norm are cancelled by it (the reference keeps them): their true
    # gradient is 0 and Adam steps them by ~lr on rounding noise, so they are compared through outputs.
    for net in ("G", "D"):
        assert ddp[net].keys() == one[net].keys()
        for key, ours in ddp[net].items():
            if ours.ndim > 1:
                scale = float(one[net][key].abs().max())
                diff = float((ours - one[net][key]).abs().max())
                assert diff <= 1e-4 * scale, f"{net}.{key}: differs by {diff:.2e} (scale {scale:.2e})"
    G_ddp, D_ddp = networks(config, ddp)
    G_one, D_one = networks(config, one)
    val = PairedDataset(config_from_dict(config).data, "val", train=False)
    x = torch.stack([val[i]["input"] for i in range(len(val))])
    with torch.no_grad():
        torch.testing.assert_close(G_ddp(x), G_one(x), atol=1e-5, rtol=0)
        pair = torch.cat([x, G_one(x)], 1)
        torch.testing.assert_close(D_ddp(pair), D_one(pair), atol=1e-5, rtol=0)

    # Only rank 0 writes: one log, each step once, and losses averaged over the whole global batch.
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoints", "config.yaml",
                                                                  "metrics.jsonl", "samples"]
    ddp_log, one_log = metrics(tmp_path / "ddp"), metrics(tmp_path / "one")
    for log in (ddp_log, one_log):
        assert [r["step"] for r in log if "G_L1" in r] == list(range(1, steps + 1))
        assert [r["step"] for r in log if "val_l1" in r] == [0, 4, 8]
    for ours, theirs in zip(ddp_log, one_log, strict=True):
        for key in ("val_l1", "D_real", "D_fake", "G_GAN", "G_L1"):
            if key in theirs:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-4), f"step {ours['step']}: {key}"


@pytest.mark.slow
def test_resume_under_ddp_matches_uninterrupted_ddp_run(tmp_path, stripes_dataset):
    steps, every = 32, 8  # the kill lands after step 8; 24 more steps leave it ample time to land mid-run
    # Dropout on (unet_64 is the smallest U-Net with a dropout level) and an image pool: each rank draws
    # its own dropout masks and keeps its own pool, and all of it must come back on resume.
    model = {"generator": "unet_64", "dropout": True}
    data = {"load_size": 72, "crop_size": 64}
    train = {"batch_size": 1, "max_steps": steps, "checkpoint_every": every, "pool_size": 3}
    config = write_config(tmp_path / "cfg.yaml", stripes_dataset, model, data, train)
    run("train", "-c", str(config), "--out", str(tmp_path / "full"), procs=2)

    killed = tmp_path / "killed"
    latest = killed / "checkpoints" / "latest.safetensors"  # appears once the first checkpoint is complete
    with started("train", "-c", str(config), "--out", str(killed), procs=2) as proc:
        deadline = time.monotonic() + 120
        while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed mid-run:\n{out}")
        kill_tree(proc)
    assert not (killed / "checkpoints" / f"step_{steps:08d}.safetensors").exists(), "killed too late"

    run("train", "--resume", str(killed), procs=2)

    (_, full), (_, resumed) = final_state(tmp_path / "full", steps), final_state(killed, steps)
    for net in ("G", "D"):
        assert full[net].keys() == resumed[net].keys()
        for key in full[net]:
            assert torch.equal(full[net][key], resumed[net][key]), f"{net}.{key} differs after resume"
        for idx, slot in full["optim"][net]["state"].items():
            assert torch.equal(slot["exp_avg_sq"], resumed["optim"][net]["state"][idx]["exp_avg_sq"])
    logged = [r["step"] for r in metrics(killed)]
    assert logged == list(range(1, steps + 1)), "metrics.jsonl misses or repeats steps"


@pytest.mark.slow
def test_cyclegan_two_processes_of_batch_one_match_one_process_of_batch_two(tmp_path, unpaired_dataset):
    # Few steps: two adversarial games of tiny nets amplify float-order noise (equal losses to 6 digits for 3
    # steps, 1e-4 apart by step 6), which says nothing about the distribution being right.
    steps = 3
    # No image pool: each rank would keep its own history of fakes, which one process cannot match.
    model = {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4, "ndf": 4}
    data = {"load_size": 36, "crop_size": 32}
    # NCHW: oneDNN's NHWC convolutions sum in a different order for batch 1 and batch 2, noise that Adam's
    # first steps (about ±lr whatever the gradient's size) turn into 1e-3 weight differences.
    train = {"max_steps": steps, "checkpoint_every": steps, "precision": "fp32", "channels_last": False,
             "pool_size": 0}
    ddp_cfg = write_config(tmp_path / "b1.yaml", unpaired_dataset, model, data, {**train, "batch_size": 1})
    one_cfg = write_config(tmp_path / "b2.yaml", unpaired_dataset, model, data, {**train, "batch_size": 2})
    run("train", "-c", str(ddp_cfg), "--out", str(tmp_path / "ddp"), procs=2)
    run("train", "-c", str(one_cfg), "--out", str(tmp_path / "one"), procs=1)

    (_, ddp), (_, one) = final_state(tmp_path / "ddp", steps), final_state(tmp_path / "one", steps)
    for net in ("G_A", "G_B", "D_A", "D_B"):
        for key, ours in ddp[net].items():
            if ours.ndim > 1:  # biases before an instance norm drift on rounding noise (see the test above)
                scale = float(one[net][key].abs().max())
                diff = float((ours - one[net][key]).abs().max())
                assert diff <= 1e-4 * scale, f"{net}.{key}: differs by {diff:.2e} (scale {scale:.2e})"
    for ours, theirs in zip(metrics(tmp_path / "ddp"), metrics(tmp_path / "one"), strict=True):
        for key in ("G_A", "cycle_A", "idt_B", "D_A", "D_B"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4), f"step {ours['step']}: {key}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_cut_two_processes_of_batch_one_match_one_process_of_batch_two(tmp_path, unpaired_dataset, mode):
    # Flips and patch locations come from a stream seeded alike on every rank, so both runs draw the same ones;
    # each rank's PatchNCE takes negatives from its own image, as one process does per image of its batch.
    steps = 3
    model = {"kind": "cut", "cut_mode": mode, "ngf": 4, "ndf": 4, "num_patches": 16, "nce_head_nc": 16}
    data = {"load_size": 36, "crop_size": 32}
    train = {"max_steps": steps, "checkpoint_every": steps, "precision": "fp32", "channels_last": False}
    ddp_cfg = write_config(tmp_path / "b1.yaml", unpaired_dataset, model, data, {**train, "batch_size": 1})
    one_cfg = write_config(tmp_path / "b2.yaml", unpaired_dataset, model, data, {**train, "batch_size": 2})
    run("train", "-c", str(ddp_cfg), "--out", str(tmp_path / "ddp"), procs=2)
    run("train", "-c", str(one_cfg), "--out", str(tmp_path / "one"), procs=1)

    (_, ddp), (_, one) = final_state(tmp_path / "ddp", steps), final_state(tmp_path / "one", steps)
    for net in ("G", "F", "D"):
        for key, ours in ddp[net].items():
            if ours.ndim > 1:  # biases before an instance norm drift on rounding noise (see the first test)
                scale = float(one[net][key].abs().max())
                diff = float((ours - one[net][key]).abs().max())
                assert diff <= 1e-4 * scale, f"{net}.{key}: differs by {diff:.2e} (scale {scale:.2e})"
    for ours, theirs in zip(metrics(tmp_path / "ddp"), metrics(tmp_path / "one"), strict=True):
        for key in ("D_real", "D_fake", "G_GAN", "NCE"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4), f"step {ours['step']}: {key}"


@pytest.mark.slow
def test_cgan_trains_in_two_processes_with_noise_of_its_own_per_rank(tmp_path, shapes_dataset):
    # G's BatchNorm sees each rank's batch (SyncBatchNorm needs GPUs), so no one-process run matches; what DDP
    # must give: every rank steps, gradients are averaged (one set of weights is saved), noise differs by rank.
    cfg = {"name": "ddp_cgan", "model": {"kind": "cgan", "ngf": 8, "ndf": 8, "z_dim": 8},
           "data": {"root": str(shapes_dataset), "num_workers": 0},
           "train": {"batch_size": 4, "max_steps": 4, "checkpoint_every": 4, "log_every": 1, "sample_every": 1000}}
    config = tmp_path / "cgan.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run("train", "-c", str(config), "--out", str(tmp_path / "ddp"), procs=2)
    _, state = final_state(tmp_path / "ddp", 4)
    ranks = state["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
    assert all(torch.isfinite(v).all() for v in state["G"].values())
    assert [r["step"] for r in metrics(tmp_path / "ddp")] == [1, 2, 3, 4]
