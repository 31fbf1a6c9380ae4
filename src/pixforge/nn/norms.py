"""Normalisation layers by name, built as the reference's ``get_norm_layer`` builds them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NormName = str

# Reference choices: BatchNorm is affine with running statistics; InstanceNorm has neither.
_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True),
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
    "none": lambda c: nn.Identity(),
}


def norm_layer(name: NormName, channels: int) -> nn.Module:
    try:
        return _NORMS[name](channels)
    except KeyError:
        raise KeyError(f"unknown norm '{name}'; known: {', '.join(_NORMS)}") from None


def conv_bias(norm: NormName) -> bool:
    """The reference gives convolutions a bias only with instance norm.

    BatchNorm's shift makes a bias redundant; with no norm at all the reference still omits it, and
    we keep that so its checkpoints load.
    """
    return norm == "instance"
