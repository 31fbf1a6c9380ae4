"""Sample grids (input | output | target per row) and the validation L1, computed in eval mode.

Grids hold generated images, so they are written watermarked and labelled (pixforge.provenance), enlarged
to at least 256 pixels a side when the images are small so that the mark can be read back. The nudity
filter is not run on them: they are the training run's own diagnostics, written into its run directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pixforge.data.image_io import from_tensor
from pixforge.provenance import Provenance, enlarge, enlargement, save_generated, weights_hash
from pixforge.runtime.device import autocast


def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWxC uint8 with 1 or 3+ channels -> HxWx3, so inputs and outputs of any kind tile together."""
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def make_grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tile equally sized HxWx3 uint8 images into rows with a white gap between them."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = as_rgb(image)
    return grid


@contextlib.contextmanager
def evaluating(generator: nn.Module) -> Iterator[None]:
    """Eval mode (running BatchNorm statistics, no dropout) for the block, then back to what it was."""
    was_training = generator.training
    generator.eval()
    try:
        yield
    finally:
        generator.train(was_training)


@torch.inference_mode()
def translate_items(generator: nn.Module, dataset: Dataset, indices: list[int], device: torch.device,
                    precision: str = "fp32") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(input, output, target) uint8 images for dataset items, with the generator in eval mode."""
    out = []
    with evaluating(generator):
        for i in indices:
            item = dataset[i]
            with autocast(precision, device):
                fake = generator(item["input"].unsqueeze(0).to(device))[0].float().cpu()
            out.append((from_tensor(item["input"]), from_tensor(fake), from_tensor(item["target"])))
    return out


def write_sample_grid(path: Path, generator: nn.Module, dataset: Dataset, device: torch.device,
                      precision: str = "fp32", count: int = 4, model_name: str = "") -> Path:
    """Write ``count`` (input | output | target) rows as one marked PNG; the mark names these weights."""
    triples = translate_items(generator, dataset, list(range(min(count, len(dataset)))), device, precision)
    grid = make_grid([list(t) for t in triples])
    provenance = Provenance(weights_hash(generator.state_dict()), model_name=model_name)
    return save_generated(enlarge(grid, enlargement(*grid.shape[:2])), path, provenance, safety=None)


@torch.inference_mode()
def mean_l1(generator: nn.Module, dataset: Dataset, device: torch.device, precision: str = "fp32",
            limit: int | None = None) -> float:
    """Mean absolute error in [-1, 1] units between G(input) and target, eval mode."""
    total, n = 0.0, min(len(dataset), limit or len(dataset))
    with evaluating(generator):
        for i in range(n):
            item = dataset[i]
            with autocast(precision, device):
                fake = generator(item["input"].unsqueeze(0).to(device)).float()
            total += (fake[0] - item["target"].to(device)).abs().mean().item()
    return total / max(n, 1)
