"""Tiny models and real ``pixforge serve`` processes on 127.0.0.1 for the serving tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from pixforge.bench.serve import ServerProcess, start_server
from pixforge.config import config_from_dict
from pixforge.infer.export import export_onnx
from pixforge.nn.build import build_generator
from pixforge.runtime.checkpoint import save_checkpoint
from pixforge.runtime.components import Component

SIZE = 64
"""The tiny models' trained size (unet_64: inputs are padded to multiples of 64)."""


def tiny_checkpoint(path: Path, **data: object) -> Path:
    """A unet_64 (ngf 8) whose BatchNorm statistics come from real forwards, so outputs depend on inputs."""
    cfg = config_from_dict({"name": path.stem, "model": {"generator": "unet_64", "ngf": 8, "init_gain": 0.3},
                            "data": {"crop_size": SIZE, "load_size": SIZE, **data}})
    torch.manual_seed(0)
    generator = build_generator(cfg).train()
    with torch.no_grad():
        for _ in range(3):
            generator(torch.rand(4, cfg.data.input_nc, SIZE, SIZE) * 2 - 1)
    return save_checkpoint(path, cfg.to_dict(), {"G": generator.eval().state_dict()})


def tiny_class_model(path: Path) -> Path:
    """A class-conditional G (dcgan, ngf 8, 28 px) of three classes, as training would save it."""
    cfg = config_from_dict({"name": path.stem, "model": {"kind": "cgan", "ngf": 8, "z_dim": 8, "init_gain": 0.3},
                            "data": {"class_names": ["zero", "one", "two"]}})
    torch.manual_seed(0)
    generator = build_generator(cfg, input_nc=0, output_nc=1).train()
    with torch.no_grad():
        generator(torch.arange(3).repeat(2), torch.randn(6, 8))
    return save_checkpoint(path, cfg.to_dict(), {"G": generator.eval().state_dict()},
                           components={"G": Component("generator", output_nc=1)})


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``labels``: facades label map -> photo; ``photo``: RGB -> RGB; ``labels_onnx``: the labels export;
    ``digits``: a class-conditional model of three classes."""
    folder = tmp_path_factory.mktemp("serve-models")
    labels = tiny_checkpoint(folder / "labels.safetensors", input_palette="facades")
    photo = tiny_checkpoint(folder / "photo.safetensors")
    return {"labels": labels, "photo": photo, "labels_onnx": export_onnx(labels, folder / "labels.onnx"),
            "digits": tiny_class_model(folder / "digits.safetensors")}


@pytest.fixture(scope="session")
def launch():
    """``start_server`` for tests that need a server of their own (they stop it themselves)."""
    return start_server


@pytest.fixture(scope="session")
def server(tiny_models: dict[str, Path]) -> Iterator[ServerProcess]:
    """fp32 PyTorch and ONNX Runtime models side by side, small limits, no API key."""
    srv = start_server("--model", f"labels={tiny_models['labels']}", "--model", f"photo={tiny_models['photo']}",
                       "--model", f"labels-onnx={tiny_models['labels_onnx']}",
                       "--model", f"digits={tiny_models['digits']}", "--precision", "fp32",
                       "--max-body-bytes", "300000", "--max-pixels", "1000000")
    yield srv
    assert srv.stop() == -signal.SIGTERM, "".join(srv.output)


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
