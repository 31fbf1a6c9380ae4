"""ResNet generator (Johnson et al. 2016, as the reference's ``ResnetGenerator``).

Kept as one flat ``nn.Sequential`` with the reference's layer order, so its checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pixforge.nn import gemm_conv
from pixforge.nn.antialias import Downsample
from pixforge.nn.checkpointing import call, recompute
from pixforge.nn.norms import conv_bias, norm_layer
from pixforge.nn.registry import register_generator
from pixforge.nn.upsample import upsample_layers


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, dropout: bool, bias: bool | None = None) -> None:
        """``bias`` None: the pix2pix reference's rule (``conv_bias``); pix2pixHD gives every convolution one."""
        super().__init__()
        bias = conv_bias(norm) if bias is None else bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), gemm_conv.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim), nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), gemm_conv.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    gradient_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        run = recompute if self.gradient_checkpointing and self.training else call
        return x + run(self.conv_block, x)


class ResnetGenerator(nn.Module):
    size_multiple = 4  # two stride-2 downsamplings

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "batch",
                 dropout: bool = False, n_blocks: int = 9, upsample: str = "transposed",
                 downsample: str = "strided") -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(norm, ngf), nn.ReLU(True),
        ]
        for i in range(2):
            c = ngf * 2**i
            if downsample == "antialias":  # CUT: convolve at full resolution, then blur and subsample
                layers += [nn.Conv2d(c, 2 * c, 3, 1, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True),
                           Downsample(2 * c)]
            else:
                layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [
                *upsample_layers(upsample, c, c // 2, bias, kernel=3),
                norm_layer(norm, c // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, layers: Sequence[int] = (), encode_only: bool = False) -> Any:
        """``G(x)``; with ``layers`` (indices into ``model``), also those layers' outputs: ``(y, features)``,
        or the features alone with ``encode_only`` (stopping at the last one). CUT's PatchNCE reads them; one
        ``forward`` serves both, so DDP and compile wrappers see every call."""
        if not layers:
            return self.model(x)
        wanted, last, features = set(layers), max(layers), []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                features.append(x)
            if encode_only and i == last:
                return features
        return x, features


@register_generator("resnet_<n>blocks")
def resnet(n: int, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "batch",
           dropout: bool = False, upsample: str = "transposed", downsample: str = "strided") -> ResnetGenerator:
    """``resnet_9blocks`` (the reference's default for 256px) and ``resnet_6blocks`` (128px); with
    ``downsample``/``upsample`` ``antialias``, the CUT authors' anti-aliased variant."""
    return ResnetGenerator(input_nc, output_nc, ngf, norm, dropout, n_blocks=n, upsample=upsample,
                           downsample=downsample)
