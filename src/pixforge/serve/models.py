"""The models a server holds: each a ``Translator`` (PyTorch or ONNX Runtime), or a ``Sampler`` for a
class-conditional model, under a URL-safe name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixforge.data.palette import get_palette
from pixforge.infer.load import is_onnx, load_translator, split_direction
from pixforge.infer.sampler import Sampler
from pixforge.infer.translator import Translator
from pixforge.runtime.device import check_precision, pick_device
from pixforge.runtime.scale import inference_size

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class ServedModel:
    name: str
    translator: Translator | None
    """The translator of an image-to-image model; ``None`` for a class-conditional one (``sampler``)."""
    backend: str
    """``pytorch`` or ``onnxruntime``."""
    source: Path
    sampler: Sampler | None = None
    """A class-conditional model (``POST /v1/generate/NAME``): labels and a seed in, images out."""

    @property
    def model_hash(self) -> str:
        return self.sampler.model_hash if self.sampler is not None else self._translator.model_hash

    @property
    def _translator(self) -> Translator:
        if self.translator is None:
            raise ValueError(f"model '{self.name}' generates from class labels: POST /v1/generate/{self.name}")
        return self.translator

    @property
    def palette_name(self) -> str | None:
        """The palette of the input label map, for models that translate label maps (facades)."""
        return None if self.translator is None else self.translator.config.data.input_palette

    @property
    def task(self) -> str:
        if self.sampler is not None:
            return "class-to-image"
        data = self._translator.config.data
        if data.input_palette:
            return "labels-to-image"
        return "image-to-labels" if data.output_palette else "image-to-image"

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the generator runs an HxW input at: rescaled to its trained scale where that matters
        (``runtime.scale``), then padded to its size multiple."""
        t = self._translator
        h, w = inference_size(height, width, t.config.data, t.scale, t.size_multiple)
        m = t.size_multiple
        return -(-h // m) * m, -(-w // m) * m

    def info(self, max_batch: int) -> dict[str, Any]:
        """What ``GET /v1/models`` says about the model (and what the drawing page needs)."""
        if self.sampler is not None:
            config = self.sampler.config
            return {"name": self.name, "task": self.task, "backend": self.backend,
                    "generator": config.model.generator, "component": "G", "direction": None,
                    "class_names": self.sampler.class_names, "z_dim": self.sampler.z_dim,
                    "output_channels": config.data.output_nc, "trained_size": config.data.crop_size,
                    "model_hash": self.sampler.model_hash, "max_batch": max_batch}
        config = self._translator.config
        return {
            "name": self.name,
            "task": self.task,
            "backend": self.backend,
            "generator": config.model.generator,
            "component": self._translator.component,
            "direction": self._translator.direction,
            "input_channels": config.data.input_nc,
            "output_channels": config.data.output_nc,
            "trained_size": config.data.crop_size,
            "size_multiple": self._translator.size_multiple,
            "model_hash": self._translator.model_hash,
            "palette": get_palette(self.palette_name).to_dict() if self.palette_name else None,
            "max_batch": max_batch,
        }


def parse_model_arg(arg: str) -> tuple[str, Path, str | None]:
    """``NAME=PATH`` or ``NAME=PATH:BtoA`` from the command line -> (name, path, direction or None); the
    name becomes part of a URL, the direction picks one generator of a two-way model (CycleGAN)."""
    name, sep, spec = arg.partition("=")
    if not sep or not spec:
        raise ValueError(f"--model '{arg}': expected NAME=RUN_DIR, NAME=CHECKPOINT or NAME=FILE.onnx "
                         f"(optionally followed by :AtoB or :BtoA)")
    if not _NAME.fullmatch(name):
        raise ValueError(f"--model '{arg}': name '{name}' must be 1-64 letters, digits, '.', '_' or '-' "
                         f"(it is part of the URL /v1/translate/NAME)")
    path, direction = split_direction(spec)
    return name, Path(path), direction


def load_model(name: str, path: str | Path, device: str = "auto", precision: str = "auto",
               threads: int | None = None, direction: str | None = None) -> ServedModel:
    """Load a run directory or checkpoint (PyTorch) or an ``export onnx`` file (ONNX Runtime) and warm it up.

    PyTorch runs with the core's fast defaults (``precision`` ``auto``: bf16 where the hardware has it, with
    channels_last); ONNX Runtime runs the fp32 export. One forward at the trained size runs here, so a broken
    model stops the server at start-up and the first request pays no warm-up.
    """
    path = Path(path)
    if _class_conditional(path):
        if direction is not None:
            raise ValueError(f"--model {name}={path}:{direction}: a class-conditional model has no direction")
        if is_onnx(path):
            sampler = Sampler.from_onnx(path)
        else:
            chosen = pick_device(device, option="--device")
            check_precision(precision, chosen, option="--precision")
            sampler = Sampler.from_pretrained(path, device=chosen, precision=precision)
        sampler.sample([0])  # a broken model stops start-up; the first request pays no warm-up
        return ServedModel(name=name, translator=None, backend="onnxruntime" if is_onnx(path) else "pytorch",
                           source=path, sampler=sampler)
    if is_onnx(path):
        translator = load_translator(path, direction, intra_op_num_threads=threads)
        backend = "onnxruntime"
    else:
        chosen = pick_device(device, option="--device")
        check_precision(precision, chosen, option="--precision")
        translator = load_translator(path, direction, device=chosen, precision=precision)
        backend = "pytorch"
    # Configs allow 1 or 3 channels today; a one-hot label-map model (pix2pixHD) would need its own intake.
    for side, channels in (("input", translator.input_nc), ("output", translator.output_nc)):
        if channels not in (1, 3):
            raise ValueError(f"{path}: the model's {side} has {channels} channels; the server sends and answers "
                             f"images (1 or 3 channels)")
    model = ServedModel(name=name, translator=translator, backend=backend, source=path)
    if model.palette_name:
        get_palette(model.palette_name)  # an unknown palette stops start-up, not the first /v1/models
    side = max(translator.config.data.crop_size, translator.size_multiple)
    translator.forward(torch.zeros(1, translator.input_nc, side, side))
    return model


def _class_conditional(path: Path) -> bool:
    if is_onnx(path):
        from pixforge.infer.onnx_generator import read_onnx_config

        return read_onnx_config(path).model.kind == "cgan"
    from pixforge.infer.export import is_class_conditional

    return is_class_conditional(path)


def load_models(args: list[str], device: str = "auto", precision: str = "auto",
                threads: int | None = None) -> dict[str, ServedModel]:
    """``["facades=runs/facades", "edges=edges.onnx"]`` -> models by name (names must differ)."""
    if not args:
        raise ValueError("serve: give at least one --model NAME=RUN_DIR_OR_ONNX")
    models: dict[str, ServedModel] = {}
    for arg in args:
        name, path, direction = parse_model_arg(arg)
        if name in models:
            raise ValueError(f"--model '{arg}': the name '{name}' is already used by {models[name].source}")
        models[name] = load_model(name, path, device, precision, threads, direction)
    return models
