"""Sample grids (input | output | target per row) and validation L1, computed the way inference works.

Validation items are whole images as stored (``PairedDataset(whole=True)``), translated in eval mode at the
trained scale by the same routine ``Translator`` uses (``runtime.scale.apply_generator``): the number a run
logs is the number a user gets from ``pixforge translate`` on those images.

Grids hold generated images, so they are written watermarked and labelled (pixforge.provenance), enlarged
to at least 256 pixels a side when the images are small so that the mark can be read back. The nudity
filter is not run on them: they are the training run's own diagnostics, written into its run directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixforge.config import DataConfig
from pixforge.data.datasets import PairedDataset
from pixforge.data.image_io import from_tensor
from pixforge.nn.build import size_multiple
from pixforge.nn.modes import evaluating
from pixforge.provenance import Provenance, enlarge, enlargement, save_generated
from pixforge.runtime.checkpoint import weights_hash
from pixforge.runtime.scale import Resample, apply_generator, inference_size


def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWxC uint8 with 1 or 3+ channels -> HxWx3, so inputs and outputs of any kind tile together."""
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def make_grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tile HxWx3 uint8 images into rows with a white gap; each is resized to the first image's size."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            cell = as_rgb(image)
            if cell.shape[:2] != (h, w):
                cell = np.asarray(Image.fromarray(cell).resize((w, h), Image.Resampling.BILINEAR))
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = cell
    return grid


def translate_item(generator: nn.Module, dataset: PairedDataset, index: int, device: torch.device,
                   precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input, output, target) tensors in [-1, 1] for one item, the generator applied at the trained scale.

    A label-map item's input is shown as its ``preview`` (the map in colour), and resized with nearest
    neighbour only: its channels are one-hot classes."""
    item = dataset[index]
    resample = "nearest" if dataset.cfg.label_nc else "bicubic"
    with evaluating(generator):
        fake = translate_at_scale(generator, item["input"].unsqueeze(0), dataset.cfg, device, precision,
                                  resample=resample)
    return item.get("preview", item["input"]), fake[0], item["target"]


def translate_at_scale(generator: nn.Module, x: torch.Tensor, data: DataConfig, device: torch.device,
                       precision: str = "fp32", scale: str = "auto", resample: Resample = "bicubic"
                       ) -> torch.Tensor:
    """A batch translated the way ``Translator`` does it (``runtime.scale``: resized to the trained scale,
    padded to the generator's multiple); the caller sets the network's mode."""
    multiple = size_multiple(generator)
    size = inference_size(*x.shape[-2:], data, scale, multiple)
    return apply_generator(generator, x, multiple=multiple, size=size, device=device, precision=precision,
                           resample=resample)


def write_grid(path: Path, rows: list[list[np.ndarray]], generator: nn.Module, model_name: str = "") -> Path:
    """Write rows of images as one marked PNG; the mark names ``generator``'s weights (the same hash a
    checkpoint records for it)."""
    grid = make_grid(rows)
    provenance = Provenance(weights_hash(generator.state_dict()), model_name=model_name)
    return save_generated(enlarge(grid, enlargement(*grid.shape[:2])), path, provenance, safety=None)


def paired_rows(generator: nn.Module, dataset: PairedDataset, device: torch.device, precision: str = "fp32",
                count: int = 4) -> list[list[np.ndarray]]:
    """(input | output | target) rows for the first ``count`` items of a paired dataset."""
    return [[from_tensor(t) for t in translate_item(generator, dataset, i, device, precision)]
            for i in range(min(count, len(dataset)))]


def write_sample_grid(path: Path, generator: nn.Module, dataset: PairedDataset, device: torch.device,
                      precision: str = "fp32", count: int = 4, model_name: str = "") -> Path:
    """Write ``count`` (input | output | target) rows of a paired dataset as one marked PNG."""
    return write_grid(path, paired_rows(generator, dataset, device, precision, count), generator, model_name)


def mean_l1(generator: nn.Module, dataset: PairedDataset, device: torch.device, precision: str = "fp32",
            limit: int | None = None) -> float:
    """Mean absolute error in [-1, 1] units between G(input) and target, eval mode, at the trained scale."""
    total, n = 0.0, min(len(dataset), limit or len(dataset))
    for i in range(n):
        _, fake, target = translate_item(generator, dataset, i, device, precision)
        total += (fake - target).abs().mean().item()
    return total / max(n, 1)
