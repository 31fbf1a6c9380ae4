"""Code paths written for GPUs, exercised on the CPU (CI has no GPU): fp16 + grad scaler, compile, devices."""

from __future__ import annotations

import functools

import pytest
import torch

from pixforge.config import config_from_dict
from pixforge.runtime import device as device_module
from pixforge.runtime.device import pick_device, should_compile
from pixforge.train.loop import train
from pixforge.train.metrics_log import read_metrics


def tiny(root, **train):
    return config_from_dict({
        "model": {"generator": "unet_32", "ngf": 8, "ndf": 8, "n_layers_d": 2, "norm": "instance",
                  "dropout": False},
        "data": {"root": str(root), "preprocess": "none", "load_size": 32, "crop_size": 32},
        "train": {"batch_size": 2, "max_steps": 4, "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
                  "deterministic": True, **train},
    })


def losses(run) -> list[float]:
    return [r["G_L1"] for r in read_metrics(run / "metrics.jsonl") if "G_L1" in r]


def test_fp16_with_grad_scaler_trains(tmp_path, stripes_dataset, monkeypatch):
    # fp16 is refused on CPU for speed reasons only; CPU autocast and GradScaler("cpu") run the same code.
    monkeypatch.setattr(device_module, "check_precision", lambda precision, device, option="": None)
    train(tiny(stripes_dataset, precision="fp16"), tmp_path / "run")
    values = losses(tmp_path / "run")
    assert len(values) == 4 and all(v == v and v < 1e4 for v in values)


def test_compile_wiring_matches_eager_training(tmp_path, stripes_dataset, monkeypatch):
    # The eager backend traces with dynamo but generates no code: same numbers, seconds instead of minutes.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    train(tiny(stripes_dataset, compile=True), tmp_path / "compiled")
    train(tiny(stripes_dataset, compile=False), tmp_path / "eager")
    assert losses(tmp_path / "compiled") == pytest.approx(losses(tmp_path / "eager"), rel=1e-5)


def test_gradient_checkpointing_trains_the_same(tmp_path, stripes_dataset):
    train(tiny(stripes_dataset, gradient_checkpointing=True), tmp_path / "ckpt")
    train(tiny(stripes_dataset), tmp_path / "plain")
    assert losses(tmp_path / "ckpt") == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)


def test_compile_defaults_to_cuda_only():
    assert should_compile(None, torch.device("cuda", 0)) is True
    assert should_compile(None, torch.device("cpu")) is False
    assert should_compile(True, torch.device("cpu")) is True


def test_auto_device_prefers_this_ranks_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert pick_device("auto", local_rank=5) == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="train.device: 'cuda:0' requested but CUDA is not available"):
        pick_device("cuda:0")

