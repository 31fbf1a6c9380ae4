"""Conditional discriminators: they see the input and the (real or generated) output concatenated.

Layer order and names follow the reference (``NLayerDiscriminator``, ``PixelDiscriminator``) so its
checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from pixforge.nn.antialias import Downsample
from pixforge.nn.norms import conv_bias, norm_layer
from pixforge.nn.registry import register_discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN: classifies overlapping patches; ``n_layers=3`` gives the paper's 70x70 receptive field."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 downsample: str = "strided") -> None:
        """``downsample`` ``antialias``: the CUT authors' D, each stride-2 convolution replaced by a stride-1 one
        followed by a blur and subsampling (``antialias.Downsample``), in their layer order."""
        super().__init__()
        bias = conv_bias(norm)
        blur = downsample == "antialias"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 1 if blur else 2, 1), nn.LeakyReLU(0.2, True)]
        if blur:
            layers.append(Downsample(ndf))
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            halves = n < n_layers  # the last two convolutions keep the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if halves and not blur else 1, 1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            if halves and blur:
                layers.append(Downsample(ndf * mult))
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))  # one logit per patch
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges each pixel alone (colour statistics, no structure)."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(norm, ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_discriminator("patchgan")
def patchgan(input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
             downsample: str = "strided") -> PatchDiscriminator:
    return PatchDiscriminator(input_nc, ndf, n_layers, norm, downsample)


@register_discriminator("pixel")
def pixel(input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> PixelDiscriminator:
    del n_layers  # a pixel discriminator has no depth to choose
    return PixelDiscriminator(input_nc, ndf, norm)
