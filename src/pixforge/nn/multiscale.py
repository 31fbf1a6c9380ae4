"""Multi-scale discriminator (pix2pixHD section 3.2; also SPADE's): ``num_d`` PatchGANs of identical
structure, the first on the full-resolution pair, each next one on the pair average-pooled by 2 once more.

Each PatchGAN returns all its layer outputs, so the generator can be trained to match the real pair's
intermediate features (feature matching loss). Layer structure is pix2pixHD's ``NLayerDiscriminator`` with
``getIntermFeat``: 4x4 convs padded by 2, widths doubling to at most 512, a stride-1 conv before the 1-channel
output, every conv with a bias; ``n_layers`` 3 gives 5 outputs per scale. (SPADE counts the same network as
``n_layers_D`` 4.) With ``spectral_norm`` every conv but the last is spectrally normalised, as SPADE's D.

Parameters are named ``scales.<s>.<layer>.*``, with scale 0 the full-resolution one; the reference names the
full-resolution PatchGAN ``scale{num_D-1}_layer*`` (``pixforge.compat.pix2pixhd`` maps the names).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from pixforge.nn.norms import norm_layer
from pixforge.nn.registry import register_discriminator

Features = list[list[torch.Tensor]]
"""Per scale (full resolution first), every layer's output; the last of each is the patch prediction."""


class FeaturePatchDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 4, stride, 2)
            return apply_spectral_norm(layer) if spectral_norm else layer

        stages: list[nn.Module] = [nn.Sequential(conv(input_nc, ndf, 2), nn.LeakyReLU(0.2, True))]
        width = ndf
        for n in range(1, n_layers + 1):
            prev, width = width, min(width * 2, 512)
            stride = 2 if n < n_layers else 1  # the last two convolutions keep the resolution
            stages.append(nn.Sequential(conv(prev, width, stride), norm_layer(norm, width), nn.LeakyReLU(0.2, True)))
        stages.append(nn.Sequential(nn.Conv2d(width, 1, 4, 1, 2)))  # one score per patch
        self.layers = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance", num_d: int = 2,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            FeaturePatchDiscriminator(input_nc, ndf, n_layers, norm, spectral_norm) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> Features:
        results = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            results.append(scale(x))
        return results


@register_discriminator("multiscale")
def multiscale(input_nc: int = 39, ndf: int = 64, n_layers: int = 3, norm: str = "instance", num_d: int = 2,
               spectral_norm: bool = False) -> MultiscaleDiscriminator:
    return MultiscaleDiscriminator(input_nc, ndf, n_layers, norm, num_d, spectral_norm)
