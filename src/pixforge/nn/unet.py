"""U-Net generator (pix2pix paper, section 3.2.1), written as an explicit encoder/decoder.

The reference builds the same network as nested ``UnetSkipConnectionBlock``s; this flat form computes
identical outputs (``pixforge.compat`` maps its weights) and is easier to read, checkpoint and profile.
Encoder widths are ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...; each decoder level takes the concatenation of the
previous decoder output and the encoder feature of the same resolution (the skip connection).
"""

from __future__ import annotations

import torch
from torch import nn

from pixforge.nn.checkpointing import call, recompute
from pixforge.nn.norms import conv_bias, norm_layer
from pixforge.nn.registry import register_generator
from pixforge.nn.upsample import upsample_layer


def unet_widths(num_downs: int, ngf: int) -> list[int]:
    return [min(ngf * 2**i, ngf * 8) for i in range(num_downs)]


class UnetGenerator(nn.Module):
    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs
        """Inputs' height and width must be multiples of this (each level halves them)."""
        bias = conv_bias(norm)
        w = unet_widths(num_downs, ngf)
        innermost = num_downs - 1

        down: list[nn.Module] = [nn.Sequential(nn.Conv2d(input_nc, w[0], 4, 2, 1, bias=bias))]
        for j in range(1, num_downs):
            layers: list[nn.Module] = [nn.LeakyReLU(0.2), nn.Conv2d(w[j - 1], w[j], 4, 2, 1, bias=bias)]
            if j != innermost:  # the bottleneck (1x1 at 256px) has no norm in the reference
                layers.append(norm_layer(norm, w[j]))
            down.append(nn.Sequential(*layers))

        # ReLUs here are not in place: a block under gradient checkpointing must leave its input intact.
        up: list[nn.Module] = [
            # The outermost layer always has a bias: no norm follows it, only tanh.
            nn.Sequential(nn.ReLU(), upsample_layer(upsample, 2 * w[0], output_nc, True), nn.Tanh())
        ]
        for j in range(1, num_downs):
            in_ch = w[j] if j == innermost else 2 * w[j]
            layers = [nn.ReLU(), upsample_layer(upsample, in_ch, w[j - 1], bias)]
            layers.append(norm_layer(norm, w[j - 1]))
            # Dropout is the paper's only noise source; the reference puts it in the 8ngf->8ngf levels.
            if dropout and 4 <= j < innermost:
                layers.append(nn.Dropout(0.5))
            up.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    gradient_checkpointing = False
    """Recompute each level's activations in backward instead of keeping them (``set_gradient_checkpointing``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        run = recompute if self.gradient_checkpointing and self.training else call
        skips = []
        for block in self.down:
            x = run(block, x)
            skips.append(x)
        x = run(self.up[-1], x)
        for j in range(self.num_downs - 2, -1, -1):
            x = run(self.up[j], torch.cat([skips[j], x], 1))
        return x


@register_generator("unet_<size>")
def unet(size: int, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "batch",
         dropout: bool = False, upsample: str = "transposed") -> UnetGenerator:
    """``unet_256``: 8 downsamplings (256px to 1px); ``unet_128``: 7; any power of two >= 4."""
    num_downs = size.bit_length() - 1
    if size < 4 or 2**num_downs != size:
        raise ValueError(f"unet_{size}: the size must be a power of two >= 4 (e.g. unet_128, unet_256)")
    return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, dropout, upsample)
