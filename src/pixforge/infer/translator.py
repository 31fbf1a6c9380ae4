"""``Translator``: a trained generator, rebuilt from its checkpoint, that translates images of any size.

    t = Translator.from_pretrained("runs/facades")          # a run directory or a .safetensors file
    photo = t.predict(label_map)                             # PIL in, PIL out (numpy / tensor likewise)

Inputs are reflect-padded to the multiple the generator needs (256 for ``unet_256``) and the output is
cropped back, so any size and aspect ratio works. Values: tensors live in [-1, 1] (the networks' range),
uint8/uint16 arrays and PIL images in their usual ranges, so one translator's output is the next one's
input.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixforge.config import Config, config_from_dict
from pixforge.data.image_io import convert_channels, drop_alpha, from_tensor, to_tensor
from pixforge.nn.build import build_generator, size_multiple
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint
from pixforge.runtime.device import autocast, pick_device

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


class Translator:
    def __init__(self, generator: nn.Module, config: Config, device: str | torch.device = "auto",
                 precision: str = "fp32", channels_last: bool = False, paper_test_mode: bool = False) -> None:
        """Wrap a generator. ``paper_test_mode`` reproduces the paper's test-time behaviour: batch
        statistics instead of running ones, and dropout left on (the paper's source of noise).
        ``precision="bf16"`` with ``channels_last`` is the fast path on CPUs with bf16 and on GPUs."""
        self.config = config
        self.device = pick_device(device) if isinstance(device, str) else device
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.paper_test_mode = paper_test_mode
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.size_multiple = size_multiple(generator)
        self._mode_lock = threading.Lock()

    @property
    def input_nc(self) -> int:
        return self.config.data.input_nc

    @property
    def output_nc(self) -> int:
        return self.config.data.output_nc

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> Translator:
        """Rebuild from a run directory or checkpoint file alone: the architecture is in the file."""
        file = find_checkpoint(path)
        raw_config, state = load_checkpoint(file, only="G")
        config = config_from_dict(raw_config, str(file))
        generator = build_generator(config, init=False)
        generator.load_state_dict(state["G"])
        return cls(generator, config, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, intra_op_num_threads: int | None = None,
                  **kwargs: Any) -> Translator:
        """Run a ``pixforge export onnx`` file with ONNX Runtime (CPU, fp32); the config is in the file."""
        from pixforge.infer.onnx_generator import OnnxGenerator, OnnxModelError

        if kwargs.get("paper_test_mode"):
            raise OnnxModelError(f"{path}: paper_test_mode needs train-mode BatchNorm and dropout, which an "
                                 f"ONNX export does not have; use the PyTorch checkpoint")
        if kwargs.get("precision", "fp32") != "fp32":
            raise OnnxModelError(f"{path}: ONNX exports run in fp32; got precision={kwargs['precision']!r}")
        if kwargs.get("device", "auto") == "auto":
            kwargs["device"] = "cpu"  # ONNX Runtime computes on the CPU; a GPU would only add copies
        generator = OnnxGenerator(path, intra_op_num_threads)
        return cls(generator, generator.config, **kwargs)

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
        """Bx C xHxW in [-1, 1], any H and W -> the generator's output, same H and W, on the CPU."""
        if batch.dim() != 4 or batch.shape[1] != self.input_nc:
            raise ValueError(f"expected a batch of shape (B, {self.input_nc}, H, W), got {tuple(batch.shape)}")
        h, w = batch.shape[-2:]
        x = pad_to_multiple(batch.float(), self.size_multiple)
        x = x.to(self.device, memory_format=self.memory_format)
        with self._mode(), torch.inference_mode(), autocast(self.precision, self.device):
            y = self.generator(x)
        return y[..., :h, :w].float().cpu().contiguous()

    @contextlib.contextmanager
    def _mode(self) -> Iterator[None]:
        """Eval mode normally; the paper's train-mode inference is scoped to one call (and serialised)."""
        if not self.paper_test_mode:
            yield
            return
        with self._mode_lock:
            self.generator.train()
            try:
                yield
            finally:
                self.generator.eval()

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


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W on the bottom/right up to a multiple; mirror the image where it is large enough."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    # Reflection avoids the dark borders zero padding would teach the network to draw; it needs the
    # pad to be smaller than the image, so tiny images fall back to repeating the edge.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
