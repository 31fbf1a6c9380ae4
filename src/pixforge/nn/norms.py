"""Normalisation layers by name, built as the reference's ``get_norm_layer`` builds them."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same arguments, same empty state_dict) that keeps a batch of one in NHWC.

    The built-in runs as batch norm over a (1, N·C, H, W) view, which needs NCHW: on a channels_last input
    it copies to NCHW and back, forward and backward. For one image that view is the image itself, so batch
    norm with batch statistics is the same function and its CPU and CUDA kernels take NHWC as it is (5x
    faster than the copying path for a 256-channel 64² map on a CPU). Batches of several, and exports (whose
    graph must take any batch and say instance norm), take the built-in.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if not exporting and x.dim() == 4 and x.shape[0] == 1 and not self.affine and not self.track_running_stats:
            return F.batch_norm(x, None, None, training=True, eps=self.eps)
        return super().forward(x)

NormName = str

# Reference choices: BatchNorm is affine with running statistics; InstanceNorm has neither.
_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True),
    "instance": lambda c: InstanceNorm2d(c, affine=False, track_running_stats=False),
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
