"""Sample grids (input | output | target per row) and the validation L1, computed in eval mode.

Both take a *predict* function, batch of dataset items -> generated images: a recipe's ``predict`` (which
knows what its generator needs besides the input: pix2pixHD's instance features, SPADE's style code) or,
for a plain image-to-image generator, the generator itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pixforge.data.image_io import from_tensor, write_image
from pixforge.runtime.device import autocast

Predict = Callable[[dict[str, Any]], torch.Tensor]
"""A batch of dataset items (tensors on the device) -> the generated images, in eval mode."""


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
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (running BatchNorm statistics, no dropout) for the block, then back to what each was."""
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, was_training, strict=True):
            m.train(mode)


def as_predict(model: nn.Module | Predict) -> Predict:
    """A generator that maps ``batch["input"]`` alone becomes a predict function (in eval mode)."""
    if not isinstance(model, nn.Module):
        return model

    def predict(batch: dict[str, Any]) -> torch.Tensor:
        with evaluating(model):
            return model(batch["input"])

    return predict


def one_item_batch(item: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A dataset item as a batch of one on ``device`` (what a DataLoader would make of it)."""
    return {k: v.unsqueeze(0).to(device) if isinstance(v, torch.Tensor) else [v] for k, v in item.items()}


@torch.inference_mode()
def translate_items(model: nn.Module | Predict, dataset: Dataset, indices: list[int], device: torch.device,
                    precision: str = "fp32") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(input, output, target) uint8 images for dataset items, in eval mode. Label-map items show their
    ``preview`` (the map in colour) as the input."""
    predict, out = as_predict(model), []
    for i in indices:
        item = dataset[i]
        with autocast(precision, device):
            fake = predict(one_item_batch(item, device))[0].float().cpu()
        shown = item.get("preview", item["input"])
        out.append((from_tensor(shown), from_tensor(fake), from_tensor(item["target"])))
    return out


def write_sample_grid(path: Path, model: nn.Module | Predict, dataset: Dataset, device: torch.device,
                      precision: str = "fp32", count: int = 4) -> Path:
    triples = translate_items(model, dataset, list(range(min(count, len(dataset)))), device, precision)
    return write_image(make_grid([list(t) for t in triples]), path)


@torch.inference_mode()
def mean_l1(model: nn.Module | Predict, dataset: Dataset, device: torch.device, precision: str = "fp32",
            limit: int | None = None) -> float:
    """Mean absolute error in [-1, 1] units between the generated image and the target, eval mode."""
    predict = as_predict(model)
    total, n = 0.0, min(len(dataset), limit or len(dataset))
    for i in range(n):
        item = dataset[i]
        with autocast(precision, device):
            fake = predict(one_item_batch(item, device)).float()
        total += (fake[0] - item["target"].to(device)).abs().mean().item()
    return total / max(n, 1)
