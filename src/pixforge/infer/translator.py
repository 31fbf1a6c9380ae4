"""``Translator``: a trained generator, rebuilt from its checkpoint, that translates images of any size.

    t = Translator.from_pretrained("runs/facades")          # a run directory or a .safetensors file
    photo = t.predict(label_map)                             # PIL in, PIL out (numpy / tensor likewise)

Defaults are the fast ones: bf16 where the device computes it natively (``precision="auto"``; pass
``"fp32"`` and ``channels_last=False`` for bit-exact parity with the reference), NHWC on the CPU and with
bf16, and the model applied at the scale it was trained at (``scale="auto"``, see ``pixforge.runtime.scale``);
outputs always come back at the input's own size. Values: tensors live in [-1, 1] (the networks' range),
uint8/uint16 arrays and PIL images in their usual ranges, so one translator's output is the next one's input.

Label-map models (pix2pixHD, SPADE: ``data.label_nc`` > 0) take label maps: class-index images, palette
drawings or arrays of class numbers, encoded by ``infer.label_input`` and resized with nearest neighbour only;
``predict(labels, instances=..., features=...)`` sets instance ids and pix2pixHD's per-instance features;
SPADE models trained with a style encoder take ``predict(labels, style=image)``, or ``set_style(image)`` for
every later call (``infer.style``).
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
from pixforge.data.image_io import from_tensor, image_to_tensor, read_image
from pixforge.infer.features import FeatureChoice, FeatureClusters
from pixforge.infer.label_input import LabelInput
from pixforge.infer.style import StyleCodes, load_style_encoder
from pixforge.nn.build import size_multiple
from pixforge.nn.modes import paper_test_mode
from pixforge.provenance import DEFAULT_SAFETY_FILTER, Provenance, SafetyFilter, save_generated
from pixforge.runtime.checkpoint import weights_hash
from pixforge.runtime.device import inference_copy, pick_device, resolve_channels_last, resolve_precision
from pixforge.runtime.generator import load_generator
from pixforge.runtime.scale import apply_generator, check_scale_mode, inference_size

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


class Translator:
    def __init__(self, generator: nn.Module, config: Config, device: str | torch.device = "auto",
                 precision: str = "auto", channels_last: bool | None = None, scale: str = "auto",
                 paper_test_mode: bool = False, model_hash: str | None = None,
                 feature_clusters: FeatureClusters | None = None, style_encoder: nn.Module | None = None,
                 source: str | Path | None = None, direction: str | None = "AtoB", component: str = "G") -> None:
        """Wrap a generator.

        ``paper_test_mode`` reproduces the paper's test-time behaviour: dropout on (its source of noise) and
        each image normalised by its own statistics, as at the paper's batch size 1; the generator's running
        statistics are never touched. ``scale``: auto, trained, native or reference (``runtime.scale``).
        """
        self.config = config
        """The config as this generator sees it (a BtoA generator's input side is the data's B side)."""
        self.direction = direction
        """Which way this generator maps the model's data: ``AtoB`` or ``BtoA``."""
        self.component = component
        """The generator's name in its checkpoint (``G``, ``G_A``, ``G_B``)."""
        self.device = pick_device(device, option="device") if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device, option="precision")
        self.channels_last = resolve_channels_last(channels_last, self.precision, self.device)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.scale = check_scale_mode(scale)
        self.paper_test_mode = paper_test_mode
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.size_multiple = size_multiple(generator)
        self._model_hash = model_hash
        self._mode_lock = threading.Lock()
        self._fast: nn.Module | None = None  # built on the first forward: see _fast_generator
        self.label_input = LabelInput(config, feature_clusters) if config.data.label_nc else None
        """Label-map models: how label maps become the generator's input (None for image models)."""
        self.styles = StyleCodes(config, style_encoder, source)
        self.style_code: torch.Tensor | None = None
        """SPADE with a style encoder: the code (1 x z_dim) every translation starts from; None: z = 0."""

    @property
    def input_nc(self) -> int:
        """Channels ``forward`` takes: the image's, or a label-map model's encoded input."""
        return self.label_input.channels if self.label_input else self.config.data.input_nc

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
    def from_pretrained(cls, path: str | Path, direction: str | None = None, **kwargs: Any) -> Translator:
        """Rebuild from a run directory, checkpoint or weights export alone: the architecture is in the file.

        ``direction`` picks the generator of a model that translates both ways (CycleGAN: ``AtoB`` is
        ``G_A``, ``BtoA`` is ``G_B``); default AtoB, or the model's only generator."""
        loaded = load_generator(path, direction=direction)
        if loaded.config.model.kind == "cgan":
            raise ValueError(f"{loaded.file}: a class-conditional model draws images from labels and noise; "
                             f"use pixforge sample or Sampler.from_pretrained, not a translator")
        if loaded.config.model.features:  # pix2pixHD's clustered instance features, if clustered
            kwargs.setdefault("feature_clusters", FeatureClusters.beside(loaded.file))
        if loaded.config.model.use_vae:  # SPADE's style encoder, where the file keeps it
            kwargs.setdefault("style_encoder", load_style_encoder(loaded.file, loaded.config))
        return cls(loaded.generator, loaded.config, model_hash=loaded.weights_hash, source=loaded.file,
                   direction=loaded.direction, component=loaded.name, **kwargs)

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
        return cls(generator, generator.config, model_hash=generator.model_hash, source=path,
                   direction=generator.direction, component=generator.component, **kwargs)

    @classmethod
    def from_reference(cls, folder: str | Path, epoch: str = "latest", **kwargs: Any) -> Translator:
        """Load a reference checkpoint folder: pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth`` +
        ``train_opt.txt``) or pix2pixHD (``latest_net_G.pth`` + ``opt.txt``)."""
        from pixforge.compat.pix2pixhd import is_pix2pixhd_folder, load_hd_reference
        from pixforge.compat.reference import load_reference

        if is_pix2pixhd_folder(folder):
            config, generator, _, _ = load_hd_reference(folder, epoch)
        else:
            config, generator, _ = load_reference(folder, epoch)
        return cls(generator, config, **kwargs)

    # -- translation ------------------------------------------------------------------------------
    @overload
    def predict(self, image: Image.Image, *, instances: Any = None,
                features: dict[int, FeatureChoice] | None = None, style: Any = None) -> Image.Image: ...
    @overload
    def predict(self, image: np.ndarray, *, instances: Any = None,
                features: dict[int, FeatureChoice] | None = None, style: Any = None) -> np.ndarray: ...
    @overload
    def predict(self, image: torch.Tensor, *, instances: Any = None,
                features: dict[int, FeatureChoice] | None = None, style: Any = None) -> torch.Tensor: ...

    def predict(self, image: ImageLike, *, instances: Any = None,
                features: dict[int, FeatureChoice] | None = None, style: Any = None) -> ImageLike:
        """Translate one image; returns the same kind (PIL, numpy uint8/uint16, or tensor in [-1, 1]).

        Label-map models: ``instances`` is an instance-id map of the label map's size (default: each class
        region is one instance); ``features`` maps instance ids to a cluster index of their class or to a
        vector of ``feat_num`` values (pix2pixHD feature-encoder models; default: the largest cluster).
        ``style``: an image whose look a SPADE model with a style encoder takes (default: ``style_code``)."""
        if instances is None and features is None and not (isinstance(image, torch.Tensor) and image.dim() == 4):
            return self.predict_batch([image], style=style)[0]
        code = None if style is None else self.styles.encode(style)
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            return self.forward(image, style_code=code)
        if self.label_input is None:
            raise ValueError("instances/features: only label-map models (data.label_nc > 0) take them")
        out = self.forward(self.label_input.encode(image, instances, features).unsqueeze(0), style_code=code)[0]
        return self._like(image, out)

    def set_style(self, image: Any | None, sample: bool = False, seed: int | None = None) -> None:
        """SPADE with a style encoder: every later translation takes ``image``'s look (None: back to z = 0).
        ``sample`` draws a code around the image's (the paper's test-time sampling; ``seed`` repeats a draw)."""
        self.style_code = None if image is None else self.styles.encode(image, sample=sample, seed=seed)

    def predict_batch(self, images: Sequence[ImageLike], batch_size: int = 8, style: Any = None) -> list[ImageLike]:
        """Translate many images; equal sizes are stacked into batches of up to ``batch_size``. ``style``: as
        for ``predict``, one look for all of them."""
        code = None if style is None else self.styles.encode(style)
        tensors = [self._to_model_tensor(im) for im in images]
        outputs: list[torch.Tensor | None] = [None] * len(tensors)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(tensors):
            by_size.setdefault(tuple(t.shape[-2:]), []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                result = self.forward(torch.stack([tensors[i] for i in chunk]), style_code=code)
                for i, out in zip(chunk, result, strict=True):
                    outputs[i] = out
        return [self._like(im, out) for im, out in zip(images, outputs, strict=True)]

    def forward(self, batch: torch.Tensor, style_code: torch.Tensor | None = None) -> torch.Tensor:
        """B x C x H x W in [-1, 1], any H and W -> the generator's output, same H and W, on the CPU.
        ``style_code`` (SPADE): 1 x z_dim, for every image of the batch; default ``self.style_code``."""
        if batch.dim() != 4 or batch.shape[1] != self.input_nc:
            raise ValueError(f"expected a batch of shape (B, {self.input_nc}, H, W), got {tuple(batch.shape)}")
        size = inference_size(*batch.shape[-2:], self.config.data, self.scale, self.size_multiple)
        run = {"multiple": self.size_multiple, "size": size, "device": self.device, "precision": self.precision,
               "memory_format": self.memory_format,
               "resample": "nearest" if self.label_input else "bicubic"}  # one-hot classes are never blended
        code = self.style_code if style_code is None else style_code
        if not self.paper_test_mode:
            return apply_generator(_with_style(self._fast_generator(), code), batch, **run)
        with self._mode_lock, paper_test_mode(self.generator):  # the mode switch is per call and serialised
            return apply_generator(_with_style(self.generator, code), batch, one_by_one=True, **run)

    def _fast_generator(self) -> nn.Module:
        """The eval-mode generator ``forward`` runs: with reduced precision, ``runtime.device.inference_copy``
        (BatchNorm folded into the convs, conv weights stored in bf16/fp16); ``self.generator`` stays as
        loaded, for exports, hashes and paper mode. Built once, on first use: later changes to
        ``self.generator`` are not seen."""
        if self._fast is None:
            with self._mode_lock:
                if self._fast is None and isinstance(self.generator, nn.Module) and any(
                        p.is_floating_point() for p in self.generator.parameters()):
                    self._fast = inference_copy(self.generator, self.precision)
                elif self._fast is None:
                    self._fast = self.generator
        return self._fast

    def save(self, output: Any, path: str | Path, *, safety: SafetyFilter | None = DEFAULT_SAFETY_FILTER,
             overwrite: bool = False) -> Path:
        """Write a translation (what ``predict`` returned: PIL, uint8/uint16 array, or C x H x W tensor in
        [-1, 1]) to ``path`` (.png, .jpg, .webp), atomically, marked as this model's output.

        The safety filter runs first (a flagged image raises ``UnsafeImageError`` and nothing is written).
        ``safety=None`` turns it off: only for trusted uses (RESPONSIBLE_USE.md); the watermark and metadata
        are written either way. An existing file is refused unless ``overwrite``.
        """
        if isinstance(output, torch.Tensor):
            array = from_tensor(output if output.dim() == 3 else output[0])
        elif isinstance(output, Image.Image):
            array = np.asarray(output)
        elif isinstance(output, np.ndarray):
            array = output
        else:
            raise TypeError(f"expected a PIL image, numpy array or tensor, got {type(output).__name__}")
        provenance = Provenance(self.model_hash, model_name=self.config.name)
        return save_generated(array, path, provenance, safety=safety, overwrite=overwrite)

    # -- conversions ------------------------------------------------------------------------------
    def read_input(self, path: str | Path) -> np.ndarray:
        """Decode an input file: the image (HxWxC), or a label-map model's class numbers (HxW)."""
        if self.label_input is not None:
            return self.label_input.read(path)
        return read_image(path, self.input_nc)

    def to_model_tensor(self, image: Any) -> torch.Tensor:
        """One input (PIL, array or C x H x W tensor) -> what ``forward`` takes, C x H x W."""
        return self._to_model_tensor(image)

    def _to_model_tensor(self, image: Any) -> torch.Tensor:
        if self.label_input is not None:
            if isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == self.input_nc:
                return image  # already encoded
            return self.label_input.encode(image)
        if isinstance(image, torch.Tensor):
            return image if image.dim() == 3 else image.unsqueeze(0)
        return image_to_tensor(image, self.input_nc)

    def _like(self, original: Any, out: torch.Tensor) -> Any:
        if isinstance(original, torch.Tensor):
            return out
        sixteen = isinstance(original, np.ndarray) and original.dtype == np.uint16 and self.label_input is None
        dtype = np.uint16 if sixteen else np.uint8
        array = from_tensor(out, dtype)
        if isinstance(original, Image.Image):
            return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        return array[:, :, 0] if original.ndim == 2 and array.shape[2] == 1 else array


def _with_style(generator: nn.Module, code: torch.Tensor | None) -> Any:
    """The generator, or where a style code is set, a call giving each image of a batch that code as z."""
    if code is None:
        return generator
    return lambda x: generator(x, code.to(x.device).expand(x.shape[0], -1))
