"""A convolution that lowers itself to one matrix multiply where that is faster on CPU.

pix2pixHD's residual blocks are 3×3 convolutions with 1024 channels on a 16×16 map (at 256²): a
(256 × 9216) by (9216 × 1024) product. Under bf16 autocast on CPU, oneDNN's direct convolution runs
these slower than its own GEMM does (backward most: 6.8 + 8.3 ms against 23 ms per layer). So for
wide, small, stride-1, unpadded convolutions we gather the k×k neighbourhoods (im2col) from the
channels-last input and multiply once; backward is two more products and a scatter-add.

The module is an ``nn.Conv2d`` (same parameters, same state-dict keys); every other case, fp32, GPU
and narrow layers included, goes through ``F.conv2d`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

# Where the GEMM wins, measured on an AMD EPYC (bf16, 9 residual blocks, forward + backward): 1024 channels
# at 8² 245 vs 396 ms, at 16² 500 vs 600 ms, at 32² even; 512 channels at 16² 140 vs 155 ms (noise).
# On an Intel Xeon with AMX the two paths are even at every size, so the rule costs nothing there.
MIN_CHANNELS = 1024
MAX_POSITIONS = 512  # output pixels × batch: the GEMM's row count


def _im2col(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, H+k-1, W+k-1, C) channels-last → (N·H·W, k·k·C), neighbourhoods in (kh, kw, c) order."""
    n, hp, wp, c = x.shape
    h, w = hp - k + 1, wp - k + 1
    cols = torch.cat([x[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)], dim=3)
    return cols.reshape(n * h * w, k * k * c)


class _GemmConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                dtype: torch.dtype) -> torch.Tensor:
        out_c, in_c, k, _ = weight.shape
        n, _, hp, wp = x.shape
        h, w = hp - k + 1, wp - k + 1
        cols = _im2col(x.to(dtype).permute(0, 2, 3, 1), k)
        wmat = weight.permute(0, 2, 3, 1).to(dtype).reshape(out_c, k * k * in_c)
        y = cols @ wmat.t() if bias is None else torch.addmm(bias.to(dtype), cols, wmat.t())
        ctx.save_for_backward(cols, wmat)
        ctx.geometry = (n, in_c, h, w, k)
        ctx.dtypes = (x.dtype, weight.dtype)
        ctx.has_bias = bias is not None
        return y.view(n, h, w, out_c).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        cols, wmat = ctx.saved_tensors
        n, in_c, h, w, k = ctx.geometry
        g = grad_y.permute(0, 2, 3, 1).reshape(n * h * w, -1).to(wmat.dtype)
        grad_w = grad_x = grad_b = None
        if ctx.needs_input_grad[1]:
            # (O, kh, kw, C) in memory is the channels-last layout of (O, C, kh, kw).
            grad_w = (g.t() @ cols).view(-1, k, k, in_c).permute(0, 3, 1, 2).to(ctx.dtypes[1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0, dtype=torch.float32).to(ctx.dtypes[1])
        if ctx.needs_input_grad[0]:
            grad_cols = (g @ wmat).view(n, h, w, k * k, in_c)
            # col2im: accumulate the k·k shifted contributions in fp32, round once.
            acc = grad_cols.new_zeros(n, h + k - 1, w + k - 1, in_c, dtype=torch.float32)
            for i in range(k):
                for j in range(k):
                    acc[:, i:i + h, j:j + w, :] += grad_cols[:, :, :, i * k + j, :]
            grad_x = acc.permute(0, 3, 1, 2).to(ctx.dtypes[0])
        return grad_x, grad_w, grad_b, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` taking the GEMM path for wide, small, stride-1 unpadded convolutions under CPU bf16 autocast."""

    def _gemm_dtype(self, x: torch.Tensor) -> torch.dtype | None:
        if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
            return None
        dtype = torch.get_autocast_dtype("cpu")
        k = self.kernel_size[0]
        plain = (self.kernel_size[1] == k and self.stride == (1, 1) and self.dilation == (1, 1)
                 and self.groups == 1 and self.padding in ((0, 0), "valid") and self.padding_mode == "zeros")
        wide = min(self.in_channels, self.out_channels) >= MIN_CHANNELS
        n, _, h, w = x.shape
        small = n * (h - k + 1) * (w - k + 1) <= MAX_POSITIONS
        return dtype if dtype == torch.bfloat16 and plain and wide and small else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._gemm_dtype(x)
        if dtype is None:
            return super().forward(x)
        return _GemmConv.apply(x, self.weight, self.bias, dtype)

