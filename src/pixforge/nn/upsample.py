"""How generators double resolution in their decoders, by name (``model.upsample``).

``transposed`` is the paper's and the reference's stride-2 transposed convolution: checkpoints load as they
are, but its kernels overlap unevenly and can leave checkerboard patterns (Odena et al., "Deconvolution and
Checkerboard Artifacts", Distill 2016). ``resize_conv`` doubles with nearest-neighbour and then applies a 3x3
convolution, which cannot make that pattern; it is opt-in and does not load reference checkpoints.
``antialias`` is the CUT authors' decoder: zero insertion with a fixed blur (``antialias.Upsample``), then a 3x3
convolution, as two layers of the caller's ``Sequential`` so their checkpoints' keys line up.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pixforge.nn.antialias import Upsample


def _transposed(c_in: int, c_out: int, bias: bool, kernel: int) -> list[nn.Module]:
    # kernel 4 / padding 1 (U-Net) and kernel 3 / padding 1 / output_padding 1 (ResNet) both double exactly.
    return [nn.ConvTranspose2d(c_in, c_out, kernel, 2, 1, output_padding=kernel % 2, bias=bias)]


def _resize_conv(c_in: int, c_out: int, bias: bool, kernel: int) -> list[nn.Module]:
    del kernel
    return [nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))]


def _antialias(c_in: int, c_out: int, bias: bool, kernel: int) -> list[nn.Module]:
    del kernel
    return [Upsample(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]


UPSAMPLERS: dict[str, Callable[[int, int, bool, int], list[nn.Module]]] = {
    "transposed": _transposed,
    "resize_conv": _resize_conv,
    "antialias": _antialias,
}


def upsample_layers(kind: str, c_in: int, c_out: int, bias: bool, kernel: int = 4) -> list[nn.Module]:
    """The layers that double resolution and map ``c_in`` to ``c_out`` channels, to splice into a Sequential."""
    try:
        return UPSAMPLERS[kind](c_in, c_out, bias, kernel)
    except KeyError:
        raise KeyError(f"unknown upsample '{kind}'; known: {', '.join(UPSAMPLERS)}") from None


def upsample_layer(kind: str, c_in: int, c_out: int, bias: bool, kernel: int = 4) -> nn.Module:
    """The same as one module (U-Net blocks hold it as one)."""
    layers = upsample_layers(kind, c_in, c_out, bias, kernel)
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)
