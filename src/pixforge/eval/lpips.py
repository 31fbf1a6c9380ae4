"""LPIPS (Zhang et al. 2018, v0.1, AlexNet): a learned perceptual distance, 0 for identical images.

Written here rather than imported: the ``lpips`` package imports torchvision, which does not run beside this
torch. Module and key names follow torchvision's AlexNet (``features.0.weight``...) and the lpips package's
linear heads (``lin0.model.1.weight``...), so the standard weight files load unchanged
(``eval/weights.py`` names them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixforge.eval.weights import ALEXNET_FILE, LPIPS_ALEX_FILE, load_into, load_state

_TAPS = (1, 4, 7, 9, 11)
"""The ReLUs of AlexNet's five convolutions: the features LPIPS compares."""
_CHANNELS = (64, 192, 384, 256, 256)


class AlexNetFeatures(nn.Module):
    """torchvision's ``alexnet().features``, same indices, returning the five ReLU outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=False),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=False),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=False),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        return taps


class _Linear(nn.Module):
    """lpips ``NetLinLayer``: dropout (inactive in eval) then a 1x1 convolution to one channel, no bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """``distance(a, b)`` of B x 3 x H x W images in [-1, 1] -> B distances."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        for i, channels in enumerate(_CHANNELS):
            self.add_module(f"lin{i}", _Linear(channels))
        # lpips ScalingLayer: ImageNet normalisation expressed for inputs in [-1, 1].
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.net((a - self.shift) / self.scale)
        fb = self.net((b - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], device=a.device)
        for i, (x, y) in enumerate(zip(fa, fb, strict=True)):
            diff = (_unit(x) - _unit(y)) ** 2
            total = total + getattr(self, f"lin{i}")(diff).mean(dim=(1, 2, 3))
        return total

    @classmethod
    def from_files(cls, folder: Path) -> LPIPS:
        net = cls()
        load_into(net.net, load_state(folder, ALEXNET_FILE, "LPIPS"), str(folder / ALEXNET_FILE))
        heads = load_state(folder, LPIPS_ALEX_FILE, "LPIPS")
        for i in range(len(_CHANNELS)):
            load_into(getattr(net, f"lin{i}"), heads, str(folder / LPIPS_ALEX_FILE), prefix=f"lin{i}.")
        return net.eval()


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """lpips ``normalize_tensor``: each position's feature vector scaled to unit length."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


@torch.inference_mode()
def lpips_distances(net: LPIPS, outputs: list[np.ndarray], targets: list[np.ndarray]) -> list[float]:
    """Per-pair LPIPS of HxWx3 uint8 images (grey ones are repeated to three channels)."""
    distances = []
    for out, target in zip(outputs, targets, strict=True):
        a, b = _to_tensor(out), _to_tensor(target)
        distances.append(float(net(a, b)[0]))
    return distances


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    arr = np.asarray(image)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    return torch.from_numpy(arr.astype(np.float32).transpose(2, 0, 1)[None] / top * 2 - 1)
