"""Run a ``pixforge export onnx`` file with ONNX Runtime, as a module a ``Translator`` can hold.

    t = Translator.from_onnx("facades.onnx")     # same predict()/forward() as from_pretrained

The file is self-describing like a checkpoint: its ``metadata_props`` hold the full pixforge config, the
generator's ``size_multiple`` and a format marker (written by ``pixforge.infer.export``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixforge.config import Config, config_from_dict

FORMAT = "pixforge-onnx"
VERSION = "1"
INPUT, OUTPUT = "input", "output"
LABEL, NOISE = "label", "z"
"""A class-conditional export's inputs: class indices (batch,) and noise (batch, z_dim)."""


class OnnxModelError(ValueError):
    """An .onnx file is missing, unreadable or not a pixforge export; the message names it."""


def optional_import(module: str) -> Any:
    """ONNX support is an extra: say how to get it instead of a bare ImportError."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OnnxModelError(f"{module} is not installed; install the extra: pip install 'pixforge[onnx]'") from None


def _check_metadata(path: Path, meta: dict[str, str]) -> Config:
    if meta.get("format") != FORMAT:
        raise OnnxModelError(f"{path}: not a pixforge ONNX export (no '{FORMAT}' metadata); "
                             f"make one with `pixforge export onnx`")
    if meta.get("version") != VERSION:
        raise OnnxModelError(f"{path}: pixforge ONNX format version {meta.get('version')!r}; "
                             f"this pixforge reads version {VERSION}")
    return config_from_dict(json.loads(meta["config"]), str(path))


def read_onnx_config(path: str | Path) -> Config:
    """The pixforge config stored in an exported file."""
    onnx = optional_import("onnx")

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends
        raise OnnxModelError(f"{path}: not a readable ONNX file ({err.__class__.__name__})") from None
    return _check_metadata(path, {p.key: p.value for p in model.metadata_props})


class OnnxGenerator(nn.Module):
    """An exported generator run by ONNX Runtime (CPU), usable wherever a generator module is.

    ``Translator(OnnxGenerator(path), config)`` works unchanged: tensors go in and come out on the
    caller's device, ``.to()`` is a no-op (the session runs on the CPU) and the graph is eval-mode
    only, so ``.train()`` (the paper's test mode) raises.
    """

    def __init__(self, path: str | Path, intra_op_num_threads: int | None = None) -> None:
        super().__init__()
        ort = optional_import("onnxruntime")

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: ONNX file not found")
        options = ort.SessionOptions()
        # ORT's idle threads spin by default, stealing the cores our decode/encode threads need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = intra_op_num_threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own error types for garbled files
            first = str(err).splitlines()[0] if str(err) else err.__class__.__name__
            raise OnnxModelError(f"{self.path}: not a readable ONNX file ({first})") from None
        self.config = _check_metadata(self.path, dict(self.session.get_modelmeta().custom_metadata_map))
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.size_multiple = int(meta["size_multiple"])
        # The PyTorch weights' hash when the export recorded it, so both backends mark images alike.
        self.model_hash = meta.get("generator_sha256") or hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.component = meta.get("component") or "G"
        """The generator's name in the checkpoint it was exported from, and the way it maps the data."""
        self.direction = meta.get("direction", "AtoB") or None
        self.training = False

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The image batch (translators), or class labels and noise (class-conditional models: inputs
        ``label``, int64, and ``z``), as the export named them."""
        names = [i.name for i in self.session.get_inputs()]
        feed = {name: np.ascontiguousarray(t.detach().to("cpu", torch.int64 if name == LABEL else torch.float32)
                                           .numpy()) for name, t in zip(names, inputs, strict=True)}
        (y,) = self.session.run([OUTPUT], feed)
        return torch.from_numpy(y).to(inputs[0].device)

    def to(self, *args: Any, **kwargs: Any) -> OnnxGenerator:
        return self

    def train(self, mode: bool = True) -> OnnxGenerator:
        if mode:
            raise OnnxModelError(f"{self.path}: an ONNX export is eval-mode only (running BatchNorm "
                                 f"statistics, no dropout); paper_test_mode needs the PyTorch checkpoint")
        self.training = False
        return self

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, size_multiple={self.size_multiple}"
