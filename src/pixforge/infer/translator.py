"""``Translator``: a trained generator, rebuilt from its checkpoint, that translates images of any size.

    t = Translator.from_pretrained("runs/facades")          # a run directory or a .safetensors file
    photo = t.predict(label_map)                             # PIL in, PIL out (numpy / tensor likewise)

Defaults are the fast ones: bf16 where the device computes it natively (``precision="auto"``; pass
``"fp32"`` for bit-exact parity with the reference), NHWC with bf16, and the model applied at the scale it
was trained at (``scale="auto"``, see ``pixforge.runtime.scale``); outputs always come back at the input's
own size. Values: tensors live in [-1, 1] (the networks' range), uint8/uint16 arrays and PIL images in their
usual ranges, so one translator's output is the next one's input.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixforge.config import Config
from pixforge.data.image_io import convert_channels, drop_alpha, from_tensor, to_tensor
from pixforge.nn.build import size_multiple
from pixforge.nn.modes import paper_test_mode
from pixforge.runtime.checkpoint import weights_hash
from pixforge.runtime.device import pick_device, resolve_channels_last, resolve_precision
from pixforge.runtime.generator import load_generator
from pixforge.runtime.scale import apply_generator, check_scale_mode, inference_size

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


class Translator:
    def __init__(self, generator: nn.Module, config: Config, device: str | torch.device = "auto",
                 precision: str = "auto", channels_last: bool | None = None, scale: str = "auto",
                 paper_test_mode: bool = False, model_hash: str | None = None) -> None:
        """Wrap a generator.

        ``paper_test_mode`` reproduces the paper's test-time behaviour: dropout on (its source of noise) and
        each image normalised by its own statistics, as at the paper's batch size 1; the generator's running
        statistics are never touched. ``scale``: auto, trained, native or reference (``runtime.scale``).
        """
        self.config = config
        self.device = pick_device(device, option="device") if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device, option="precision")
        self.channels_last = resolve_channels_last(channels_last, self.precision)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.scale = check_scale_mode(scale)
        self.paper_test_mode = paper_test_mode
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.size_multiple = size_multiple(generator)
        self._model_hash = model_hash
        self._mode_lock = threading.Lock()

    @property
    def input_nc(self) -> int:
        return self.config.data.input_nc

    @property
    def output_nc(self) -> int:
        return self.config.data.output_nc

    @property
    def model_hash(self) -> str:
        """SHA-256 (hex) of the generator's weights: what provenance marks say produced an image."""
        if self._model_hash is None:
            self._model_hash = weights_hash(self.generator.state_dict())
        return self._model_hash

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> Translator:
        """Rebuild from a run directory, checkpoint or weights export alone: the architecture is in the file."""
        loaded = load_generator(path)
        return cls(loaded.generator, loaded.config, model_hash=loaded.weights_hash, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, intra_op_num_threads: int | None = None,
                  **kwargs: Any) -> Translator:
        """Run a ``pixforge export onnx`` file with ONNX Runtime (CPU, fp32); the config is in the file."""
        from pixforge.infer.onnx_generator import OnnxGenerator, OnnxModelError

        if kwargs.get("paper_test_mode"):
            raise OnnxModelError(f"{path}: paper_test_mode needs train-mode BatchNorm and dropout, which an "
                                 f"ONNX export does not have; use the PyTorch checkpoint")
        if kwargs.get("precision", "auto") not in ("auto", "fp32"):
            raise OnnxModelError(f"{path}: ONNX exports run in fp32; got precision={kwargs['precision']!r}")
        kwargs["precision"] = "fp32"
        kwargs.setdefault("channels_last", False)
        if kwargs.get("device", "auto") == "auto":
            kwargs["device"] = "cpu"  # ONNX Runtime computes on the CPU; a GPU would only add copies
        generator = OnnxGenerator(path, intra_op_num_threads)
        return cls(generator, generator.config, model_hash=generator.model_hash, **kwargs)

    @classmethod
    def from_reference(cls, folder: str | Path, epoch: str = "latest", **kwargs: Any) -> Translator:
        """Load a pytorch-CycleGAN-and-pix2pix checkpoint folder (``latest_net_G.pth`` + ``train_opt.txt``)."""
        from pixforge.compat.reference import load_reference

        config, generator, _ = load_reference(folder, epoch)
        return cls(generator, config, **kwargs)

    # -- translation ------------------------------------------------------------------------------
    @overload
    def predict(self, image: Image.Image) -> Image.Image: ...
    @overload
    def predict(self, image: np.ndarray) -> np.ndarray: ...
    @overload
    def predict(self, image: torch.Tensor) -> torch.Tensor: ...

    def predict(self, image: ImageLike) -> ImageLike:
        """Translate one image; returns the same kind (PIL, numpy uint8/uint16, or tensor in [-1, 1])."""
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            return self.forward(image)
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike], batch_size: int = 8) -> list[ImageLike]:
        """Translate many images; equal sizes are stacked into batches of up to ``batch_size``."""
        tensors = [self._to_model_tensor(im) for im in images]
        outputs: list[torch.Tensor | None] = [None] * len(tensors)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(tensors):
            by_size.setdefault(tuple(t.shape[-2:]), []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                result = self.forward(torch.stack([tensors[i] for i in chunk]))
                for i, out in zip(chunk, result, strict=True):
                    outputs[i] = out
        return [self._like(im, out) for im, out in zip(images, outputs, strict=True)]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """B x C x H x W in [-1, 1], any H and W -> the generator's output, same H and W, on the CPU."""
        if batch.dim() != 4 or batch.shape[1] != self.input_nc:
            raise ValueError(f"expected a batch of shape (B, {self.input_nc}, H, W), got {tuple(batch.shape)}")
        size = inference_size(*batch.shape[-2:], self.config.data, self.scale, self.size_multiple)
        run = {"multiple": self.size_multiple, "size": size, "device": self.device, "precision": self.precision,
               "memory_format": self.memory_format}
        if not self.paper_test_mode:
            return apply_generator(self.generator, batch, **run)
        with self._mode_lock, paper_test_mode(self.generator):  # the mode switch is per call and serialised
            return apply_generator(self.generator, batch, one_by_one=True, **run)

    # -- conversions ------------------------------------------------------------------------------
    def _to_model_tensor(self, image: Any) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image if image.dim() == 3 else image.unsqueeze(0)
        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("L" if self.input_nc == 1 else "RGB"))
        if not isinstance(image, np.ndarray):
            raise TypeError(f"expected a PIL image, numpy array or tensor, got {type(image).__name__}")
        return to_tensor(convert_channels(drop_alpha(image), self.input_nc))

    def _like(self, original: Any, out: torch.Tensor) -> Any:
        if isinstance(original, torch.Tensor):
            return out
        dtype = original.dtype if isinstance(original, np.ndarray) and original.dtype == np.uint16 else np.uint8
        array = from_tensor(out, dtype)
        if isinstance(original, Image.Image):
            return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        return array[:, :, 0] if original.ndim == 2 and array.shape[2] == 1 else array
