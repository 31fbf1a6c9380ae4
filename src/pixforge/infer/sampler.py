"""Sampling from class-conditional models (``model.kind: cgan``): class labels + a seed in, images out.

``Translator`` maps images to images; a class-conditional generator takes no image, so it has its own front
end. Noise is a function of the seed alone: sample ``i`` of a call with ``seed`` s draws its z from a
generator seeded ``s + i``, so the same seed gives the same images on any machine and batch size, and one
seed drawn as every class shows what the latent holds (``grid``).

Written images are enlarged by an integer factor with nearest neighbour to at least 256 pixels a side (a
28-pixel digit has too few pixels for the invisible mark), then filtered and marked like every output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixforge.config import Config
from pixforge.data.image_io import from_tensor
from pixforge.provenance.safety import DEFAULT_SAFETY_FILTER, SafetyFilter
from pixforge.provenance.save import Provenance, enlarge, enlargement, save_generated
from pixforge.runtime.device import autocast, inference_copy, pick_device, resolve_precision
from pixforge.runtime.generator import load_generator

Label = int | str


class LabelError(ValueError):
    """A label names no class of the model; the message lists the known ones."""


class Sampler:
    def __init__(self, generator: nn.Module, config: Config, model_hash: str, source: str | Path = "model",
                 device: str | torch.device = "auto", precision: str = "auto") -> None:
        if config.model.kind != "cgan":
            raise ValueError(f"{source}: a {config.model.kind} model translates images; use Translator "
                             f"(pixforge translate), not Sampler")
        self.config = config
        self.device = pick_device(device, option="device") if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device, option="precision")
        self.generator = inference_copy(generator, self.precision).to(self.device).eval()
        self.model_hash, self.source = model_hash, source

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> Sampler:
        """A run directory, checkpoint or weights export of a class-conditional model."""
        loaded = load_generator(path)
        return cls(loaded.generator, loaded.config, loaded.weights_hash, loaded.file, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path) -> Sampler:
        """A ``pixforge export onnx`` file of a class-conditional model, run by ONNX Runtime (CPU, fp32)."""
        from pixforge.infer.onnx_generator import OnnxGenerator

        generator = OnnxGenerator(path)
        return cls(generator, generator.config, generator.model_hash, path, device="cpu", precision="fp32")

    @property
    def class_names(self) -> list[str]:
        return list(self.config.data.class_names or ())

    @property
    def z_dim(self) -> int:
        return self.config.model.z_dim

    def label_index(self, label: Label) -> int:
        """A class by name (``"7"``, ``"banana"``) or index; a name wins over an index that looks the same."""
        names = self.class_names
        if isinstance(label, str) and label in names:
            return names.index(label)
        try:
            index = int(label)
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(names) or isinstance(label, bool):
            raise LabelError(f"label '{label}': not a class of {self.source} (known: {', '.join(names)}; or "
                             f"an index 0..{len(names) - 1})")
        return index

    def noise(self, seed: int, count: int) -> torch.Tensor:
        """z of samples ``seed``, ``seed + 1``, ... (``count`` × z_dim): each from its own seeded generator."""
        return torch.stack([torch.randn(self.z_dim, generator=torch.Generator().manual_seed(seed + i))
                            for i in range(count)])

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G(labels, z), N×C×H×W in [-1, 1] on the CPU."""
        with torch.inference_mode(), autocast(self.precision, self.device):
            return self.generator(labels.to(self.device), z.to(self.device)).float().cpu()

    def sample(self, labels: Label | Sequence[Label], seed: int = 0) -> torch.Tensor:
        """One image per label (N×C×H×W in [-1, 1]); image ``i`` from seed ``seed + i``."""
        wanted = [labels] if isinstance(labels, int | str) else list(labels)
        indices = torch.tensor([self.label_index(label) for label in wanted], dtype=torch.long)
        return self.forward(indices, self.noise(seed, len(wanted)))

    def grid(self, labels: Sequence[Label] | None = None, seeds: int = 8, seed: int = 0) -> np.ndarray:
        """One image: rows = seeds ``seed``..``seed + seeds − 1``, columns = ``labels`` (default every class),
        each row one z drawn as every class; 2-pixel gaps."""
        columns = [self.label_index(label) for label in (labels if labels is not None else self.class_names)]
        z = self.noise(seed, seeds).repeat_interleave(len(columns), dim=0)
        images = self.forward(torch.tensor(columns * seeds, dtype=torch.long), z)
        tiles = [from_tensor(t) for t in images]
        h, w, c = tiles[0].shape
        gap = 2
        out = np.full((seeds * (h + gap) - gap, len(columns) * (w + gap) - gap, c), 255, np.uint8)
        for i, tile in enumerate(tiles):
            r, col = divmod(i, len(columns))
            out[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = tile
        return out

    def save(self, image: torch.Tensor | np.ndarray, path: str | Path, *, overwrite: bool = False,
             safety: SafetyFilter | None = DEFAULT_SAFETY_FILTER) -> Path:
        """Write one sample (C×H×W tensor in [-1, 1] or H×W×C uint8), enlarged to carry the mark, filtered and
        marked as this model's output, atomically; an existing file is refused unless ``overwrite``."""
        return save_generated(self.pixels(image), path, Provenance(self.model_hash, model_name=self.config.name),
                              safety=safety, overwrite=overwrite)

    @staticmethod
    def pixels(image: torch.Tensor | np.ndarray) -> np.ndarray:
        """A sample as it is written (here and by the server): H×W×C uint8, enlarged to carry the mark."""
        array = from_tensor(image) if isinstance(image, torch.Tensor) else image
        return enlarge(array, enlargement(*array.shape[:2]))
