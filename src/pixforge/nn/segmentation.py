"""The judge of the FCN-score protocol: a photo -> label-map segmentation network, and its scores.

pix2pix (Isola et al. 2017, section 4.2 and Table 1) rates generated photos by how well an off-the-shelf
semantic segmenter (FCN-8s, Long et al. 2015) recovers the label map they were generated from. No such
network ships for facades, so pixforge trains its own (``pixforge judge train``, ``train/judge.py``): a small
U-Net (Ronneberger et al. 2015) from scratch on the train split. It is fully convolutional, so it trains on
crops and judges whole images.

The scores are the FCN paper's: per-pixel accuracy, mean per-class accuracy and mean class IoU, computed from
one confusion matrix accumulated over a whole split (so a class that is rare in each image still counts
fully). They live here, beside the network, because both the trainer (choosing the judge on val) and
``eval/`` (scoring generated photos) use them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

JUDGE_FILE = "judge.safetensors"
"""The file ``pixforge judge train`` writes: the weights of the best epoch and, as metadata, the network's
arguments, the palette, which half of a pair is the label map, and the judge's own val scores."""
JUDGE_KIND = "pixforge-fcn-judge"
"""``config["kind"]`` of a judge file, so a generator checkpoint given as a judge is refused by name."""


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SegmentationUNet(nn.Module):
    """Photo (B x in_channels x H x W in [-1, 1]) -> class logits (B x n_classes x H x W).

    A stride-2 stem first: the U-Net works at half resolution and the logits are upsampled back, which
    costs label maps of blocky regions little and makes the judge about four times cheaper to train. Then
    ``depth`` poolings of 2, channels ``width * 2**level`` capped at 256. Upsampling is bilinear followed by
    convolutions (no transposed convolutions, so no checkerboard of their own). H and W need not be
    multiples of ``size_multiple``: other sizes are padded inside and cropped back.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 12, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        self.in_channels, self.n_classes, self.width, self.depth = in_channels, n_classes, width, depth
        self.size_multiple = 2 ** (depth + 1)
        chans = [min(width * 2**i, 256) for i in range(depth + 1)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, chans[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True))
        self.down = nn.ModuleList([_double_conv(chans[0], chans[0])] +
                                  [_double_conv(chans[i], chans[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([_double_conv(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        x = self.stem(F.pad(x, (0, -w % m, 0, -h % m), mode="replicate"))
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        logits = F.interpolate(self.head(x), scale_factor=2, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def arguments(self) -> dict[str, int]:
        """The constructor arguments, stored with the weights so the judge rebuilds from its file alone."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "width": self.width,
                "depth": self.depth}


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: row = true class, column = predicted class."""
    t, p = np.asarray(truth, np.int64).ravel(), np.asarray(predicted, np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"truth ({t.size} pixels) and prediction ({p.size} pixels) differ in size")
    return np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)


def segmentation_scores(confusion: np.ndarray) -> dict[str, float]:
    """The FCN paper's three numbers from a confusion matrix.

    ``pixel_acc``: correct pixels / all pixels. ``class_acc``: the mean over classes of correct / true pixels
    of that class. ``iou``: the mean over classes of |truth ∩ prediction| / |truth ∪ prediction|. Classes that
    never occur in the truth are left out of ``class_acc``; those in neither truth nor prediction out of
    ``iou`` (as the reference ``get_scores`` does with nan-means).
    """
    cm = np.asarray(confusion, np.float64)
    hit = np.diag(cm)
    truth, predicted = cm.sum(1), cm.sum(0)
    union = truth + predicted - hit
    return {
        "pixel_acc": float(hit.sum() / cm.sum()) if cm.sum() else float("nan"),
        "class_acc": float(np.mean(hit[truth > 0] / truth[truth > 0])) if (truth > 0).any() else float("nan"),
        "iou": float(np.mean(hit[union > 0] / union[union > 0])) if (union > 0).any() else float("nan"),
    }
