"""Anti-aliased resampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019), as the CUT
authors' ``Downsample``/``Upsample``: a fixed binomial blur applied per channel around the stride.

``Downsample`` blurs then keeps every second pixel (reflection padding); ``Upsample`` inserts zeros and blurs
(replication padding), which doubles exactly. The kernel is a buffer named ``filt``, one copy per channel, as
the authors store it, so their checkpoints load key for key.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0],
             6: [1.0, 5.0, 10.0, 10.0, 5.0, 1.0], 7: [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0]}


def blur_kernel(size: int) -> torch.Tensor:
    """The normalised ``size``×``size`` binomial kernel (outer product of Pascal's row)."""
    row = torch.tensor(_BINOMIAL[size], dtype=torch.float64)
    kernel = row[:, None] * row[None, :]
    return (kernel / kernel.sum()).float()


class Downsample(nn.Module):
    """Blur, then stride 2: the anti-aliased replacement of a stride-2 convolution's subsampling."""

    def __init__(self, channels: int, size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.stride = stride
        low, high = (size - 1) // 2, math.ceil((size - 1) / 2)
        self.pad = nn.ReflectionPad2d((low, high, low, high))
        self.register_buffer("filt", blur_kernel(size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])


class Upsample(nn.Module):
    """Zero insertion and blur (a transposed convolution with the fixed kernel): exact doubling."""

    def __init__(self, channels: int, size: int = 4, stride: int = 2) -> None:
        super().__init__()
        self.size, self.stride = size, stride
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (blur_kernel(size) * stride**2)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride,
                               padding=1 + (self.size - 1) // 2, groups=x.shape[1])[:, :, 1:, 1:]
        return y if self.size % 2 else y[:, :, :-1, :-1]
