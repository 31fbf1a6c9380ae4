"""pix2pixHD generators (Wang et al., CVPR 2018, section 3.2): ``global`` (G1) and ``local`` (G2 around G1).

Layer order and names follow the reference (``GlobalGenerator``, ``LocalEnhancer`` of NVIDIA/pix2pixHD) so its
checkpoints load unchanged: one flat ``model`` Sequential for G1, ``model{n}_1`` (front-end) and ``model{n}_2``
(residual blocks + back-end) for enhancer n. That is also what makes coarse-to-fine training work by name: a
``local`` G's ``model`` is a ``global`` G without its last three layers (pad, 7x7 conv, tanh), so a trained global
run's weights fill it key for key.

Unlike the pix2pix ResNet, every convolution has a bias (the reference sets none to False) and the default norm
is instance norm without affine parameters.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from pixforge.nn.checkpointing import call, recompute
from pixforge.nn.norms import norm_layer
from pixforge.nn.registry import register_generator
from pixforge.nn.resnet import ResnetBlock

_HEAD = 3
"""A global generator's last layers (reflection pad, 7x7 conv, tanh), dropped when it becomes G2's inner part."""


def _front(input_nc: int, ngf: int, norm: str) -> list[nn.Module]:
    # 7x7 convolution at full resolution (c7s1-ngf in the paper's notation)
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm_layer(norm, ngf), nn.ReLU(True)]


def _down(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, 2, 1), norm_layer(norm, c_out), nn.ReLU(True)]


def _up(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), norm_layer(norm, c_out), nn.ReLU(True)]


def _head(ngf: int, output_nc: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]


def global_layers(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int, norm: str,
                  dropout: bool) -> tuple[list[nn.Module], list[int]]:
    """G1's layers in the reference's order, and where its stages start (the units gradient checkpointing
    recomputes: the 7x7 front, each down/up step, each residual block, the head)."""
    layers = _front(input_nc, ngf, norm)
    starts = [0]
    for i in range(n_downsampling):
        starts.append(len(layers))
        layers += _down(ngf * 2**i, ngf * 2 ** (i + 1), norm)
    width = ngf * 2**n_downsampling
    for _ in range(n_blocks):
        starts.append(len(layers))
        layers.append(ResnetBlock(width, norm, dropout, bias=True))
    for i in range(n_downsampling):
        starts.append(len(layers))
        c = ngf * 2 ** (n_downsampling - i)
        layers += _up(c, c // 2, norm)
    starts.append(len(layers))
    layers += _head(ngf, output_nc)
    return layers, starts


def run_stages(model: nn.Sequential, starts: list[int], x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """Apply ``model`` stage by stage; under gradient checkpointing each stage keeps only its input."""
    run = recompute if checkpointing else call
    bounds = [*starts, len(model)]
    for a, b in itertools.pairwise(bounds):
        if a < b:
            stage = model[a:b]
            x = stage(x) if isinstance(stage[0], ResnetBlock) else run(stage, x)  # blocks checkpoint themselves
    return x


class GlobalGenerator(nn.Module):
    """G1: 7x7 conv, ``n_downsampling`` stride-2 convs, ``n_blocks`` residual blocks, mirrored transposed convs,
    7x7 conv, tanh. Defaults are the paper's (ngf 64, 4 downsamplings, 9 blocks): ~183 M parameters."""

    def __init__(self, input_nc: int = 36, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 4,
                 n_blocks: int = 9, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        layers, self._starts = global_layers(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm, dropout)
        self.model = nn.Sequential(*layers)
        self.size_multiple = 2**n_downsampling
        """Inputs' height and width must be multiples of this (each downsampling halves them)."""

    gradient_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.model, self._starts, x, self.gradient_checkpointing and self.training)


class LocalEnhancer(nn.Module):
    """G2: G1 (width ``ngf * 2**n_local_enhancers``) runs on the input downsampled ``n_local_enhancers`` times;
    each enhancer n adds its front-end's features at twice the resolution to the coarser output and refines
    the sum with ``n_blocks_local`` residual blocks and a transposed conv. The outermost ends in 7x7 conv + tanh.
    """

    def __init__(self, input_nc: int = 36, output_nc: int = 3, ngf: int = 32, n_downsample_global: int = 4,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3,
                 norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        self.n_local_enhancers = n_local_enhancers
        layers, starts = global_layers(input_nc, output_nc, ngf * 2**n_local_enhancers, n_downsample_global,
                                       n_blocks_global, norm, dropout)
        self.model = nn.Sequential(*layers[:-_HEAD])
        self._starts = starts[:-1]
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            front = _front(input_nc, width, norm) + _down(width, 2 * width, norm)
            back: list[nn.Module] = [ResnetBlock(2 * width, norm, dropout, bias=True) for _ in range(n_blocks_local)]
            back += _up(2 * width, width, norm)
            if n == n_local_enhancers:
                back += _head(ngf, output_nc)
            self.add_module(f"model{n}_1", nn.Sequential(*front))
            self.add_module(f"model{n}_2", nn.Sequential(*back))
        # The input pyramid: 3x3 average pooling, borders averaged over the pixels that exist (as the reference).
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.size_multiple = 2 ** (n_downsample_global + n_local_enhancers)

    gradient_checkpointing = False

    def coarse_parameters(self) -> list[nn.Parameter]:
        """Everything but the outermost enhancer: what ``niter_fix_global`` keeps frozen (the reference trains
        only parameters whose names start with ``model{n_local_enhancers}``)."""
        outer = f"model{self.n_local_enhancers}_"
        return [p for name, p in self.named_parameters() if not name.startswith(outer)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checkpointing = self.gradient_checkpointing and self.training
        run = recompute if checkpointing else call
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = run_stages(self.model, self._starts, pyramid[-1], checkpointing)
        for n in range(1, self.n_local_enhancers + 1):
            front, back = getattr(self, f"model{n}_1"), getattr(self, f"model{n}_2")
            out = run(front, pyramid[self.n_local_enhancers - n]) + out
            out = run_stages(back, _back_starts(back), out, checkpointing)
        return out


def _back_starts(back: nn.Sequential) -> list[int]:
    """Stage starts of an enhancer's back-end: each residual block, then the upsampling, then the head."""
    blocks = [i for i, m in enumerate(back) if isinstance(m, ResnetBlock)]
    up = len(blocks)
    return [*blocks, up] + ([up + 3] if len(back) > up + 3 else [])


@register_generator("global")
def global_generator(input_nc: int = 36, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                     dropout: bool = False, n_downsample_global: int = 4, n_blocks_global: int = 9) -> GlobalGenerator:
    """pix2pixHD's G1 (``--netG global``)."""
    return GlobalGenerator(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, norm, dropout)


@register_generator("local")
def local_generator(input_nc: int = 36, output_nc: int = 3, ngf: int = 32, norm: str = "instance",
                    dropout: bool = False, n_downsample_global: int = 4, n_blocks_global: int = 9,
                    n_local_enhancers: int = 1, n_blocks_local: int = 3) -> LocalEnhancer:
    """pix2pixHD's G = {G1, G2} (``--netG local``); ``ngf`` is the enhancer's width, G1 has ``ngf * 2**n``."""
    return LocalEnhancer(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, n_local_enhancers,
                         n_blocks_local, norm, dropout)
