"""A small image classifier: the judge of class-conditional generators (``pixforge judge train --kind classifier``).

Three 3×3 conv blocks (BatchNorm, ReLU, 2×2 max pooling), global average pooling and a linear layer: enough
to read MNIST digits at ~99% after a few epochs on a CPU, and any small labelled set roughly as well.
``features`` (the pooled vector) is what diversity is measured in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CLASSIFIER_FILE = "judge.safetensors"
CLASSIFIER_KIND = "pixforge-classifier-judge"


class ImageClassifier(nn.Module):
    def __init__(self, num_classes: int, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.num_classes, self.channels, self.width = num_classes, channels, width
        layers: list[nn.Module] = []
        c = channels
        for w in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True), nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)

    def arguments(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "channels": self.channels, "width": self.width}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4·width) pooled features of images in [-1, 1]."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
