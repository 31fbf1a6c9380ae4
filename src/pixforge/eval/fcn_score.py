"""The FCN-score protocol (pix2pix, Table 1): a segmenter judges generated photos against the true labels.

The judge (``pixforge judge train``) maps a photo to class indices; a generated photo that a good segmenter
labels as its source label map was labelled scores well. Real photos judged the same way give the upper
bound. Scores come from one confusion matrix over the split (``nn/segmentation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixforge.data.palette import Palette, get_palette
from pixforge.nn.segmentation import (
    JUDGE_FILE,
    JUDGE_KIND,
    SegmentationUNet,
    confusion_matrix,
    segmentation_scores,
)
from pixforge.runtime.checkpoint import CheckpointError, load_checkpoint


def load_judge_file(path: str | Path, file_name: str, kind: str, make_with: str
                    ) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A judge's ``file_name`` (or the folder holding it) of checkpoint ``kind`` -> (file, config, state); one-line
    errors say what was found instead and how to make one."""
    path = Path(path)
    file = path / file_name if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"{path}: no judge found (expected {file_name}; make one with '{make_with}')")
    config, state = load_checkpoint(file)
    if config.get("kind") != kind:
        raise CheckpointError(f"{file}: not a judge of this kind (a pixforge checkpoint of kind "
                              f"'{config.get('kind', 'generator')}'); make one with '{make_with}'")
    return file, config, state

class Judge:
    def __init__(self, net: SegmentationUNet, palette: Palette, label_side: str, meta: dict[str, Any]) -> None:
        self.net = net.eval()
        self.palette = palette
        self.label_side = label_side
        """Which half of a dataset pair holds the label map (the photo is the other)."""
        self.meta = meta

    @property
    def photo_side(self) -> str:
        return "A" if self.label_side == "B" else "B"

    @classmethod
    def load(cls, path: str | Path) -> Judge:
        """A ``judge.safetensors`` file, or the folder ``pixforge judge train --out`` wrote it to."""
        file, config, state = load_judge_file(path, JUDGE_FILE, JUDGE_KIND, "pixforge judge train")
        net = SegmentationUNet(**config["network"])
        net.load_state_dict(state["judge"])
        return cls(net, get_palette(config["palette"]), config["label_side"], {**config, "path": str(file)})

    @torch.inference_mode()
    def classes(self, photo: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 photo -> HxW class indices."""
        arr = np.asarray(photo)
        if arr.dtype == np.uint16:
            arr = (arr // 257).astype(np.uint8)
        if arr.ndim == 2 or arr.shape[2] == 1:
            arr = np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(arr[:, :, :3].transpose(2, 0, 1))).float()[None]
        return self.net(x / 127.5 - 1.0)[0].argmax(0).to(torch.uint8).numpy()

    def truth(self, label_map: np.ndarray) -> np.ndarray:
        """A dataset's colour label map -> class indices (snapped to the judge's palette)."""
        arr = np.asarray(label_map)
        if arr.dtype == np.uint16:
            arr = (arr // 257).astype(np.uint8)
        return self.palette.snap(arr)


@dataclass
class FCNTally:
    """A confusion matrix summed image by image, plus each image's own scores."""

    n_classes: int
    confusion: np.ndarray = field(init=False)
    per_image: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.n_classes, self.n_classes), np.int64)

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        if truth.shape != predicted.shape:
            raise ValueError(f"judge: label map {truth.shape[1]}x{truth.shape[0]} and judged image "
                             f"{predicted.shape[1]}x{predicted.shape[0]} differ in size")
        cm = confusion_matrix(truth, predicted, self.n_classes)
        self.confusion += cm
        scores = segmentation_scores(cm)
        self.per_image.append(scores)
        return scores

    def scores(self) -> dict[str, float]:
        return segmentation_scores(self.confusion)
