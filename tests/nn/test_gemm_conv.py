"""The GEMM-lowered convolution: nn.Conv2d's parameters, a convolution's numbers, taken only where it wins."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixforge.nn import gemm_conv
from pixforge.nn.resnet import ResnetBlock

WIDE = gemm_conv.MIN_CHANNELS


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.bfloat16).double()


def _run(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, str, list[torch.Tensor]]:
    x = x.detach().clone().requires_grad_()
    conv.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    kind = type(y.grad_fn).__name__
    y.backward(grad.to(y.dtype))
    return y.double(), kind, [x.grad.double(), conv.weight.grad.double(), conv.bias.grad.double()]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("batch,height,width", [(1, 10, 10), (2, 7, 12)])
def test_matches_an_exact_convolution_as_closely_as_onednn(channels_last: bool, batch: int, height: int,
                                                           width: int) -> None:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = gemm_conv.Conv2d(WIDE, WIDE, 3).to(memory_format=fmt)
    native = nn.Conv2d(WIDE, WIDE, 3).to(memory_format=fmt)
    native.load_state_dict(conv.state_dict())
    x = torch.randn(batch, WIDE, height, width).contiguous(memory_format=fmt)
    grad = torch.randn(batch, WIDE, height - 2, width - 2)

    # Exact answer on the bf16-rounded operands, in float64.
    xe, we, be = (_bf16(t).requires_grad_() for t in (x, conv.weight, conv.bias))
    ye = F.conv2d(xe, we, be)
    ye.backward(_bf16(grad))
    exact = [xe.grad, we.grad, be.grad]

    y, kind, grads = _run(conv, x, grad)
    _, ref_kind, ref_grads = _run(native, x, grad)
    assert kind == "_GemmConvBackward" and ref_kind == "ConvolutionBackward0"

    def err(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a - b).norm() / b.norm()).item()

    assert err(y, ye) < 4e-3
    for name, g, r, e in zip(("input", "weight", "bias"), grads, ref_grads, exact, strict=True):
        assert g.shape == e.shape, name
        # bf16 rounds outputs to 2^-9 relative; accumulation is fp32 in both kernels.
        assert err(g, e) < max(4e-3, 1.5 * err(r, e)), name
    assert conv.weight.grad.dtype == torch.float32 and conv.weight.grad.stride() == conv.weight.stride()


def test_falls_back_to_conv2d_outside_its_regime() -> None:
    torch.manual_seed(0)
    wide = gemm_conv.Conv2d(WIDE, WIDE, 3)
    x = torch.randn(1, WIDE, 6, 6)
    assert type(wide(x).grad_fn).__name__ == "ConvolutionBackward0"  # fp32: no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert type(wide(x).grad_fn).__name__ == "_GemmConvBackward"
        big = torch.randn(1, WIDE, 40, 40)  # 38² output positions: oneDNN's direct kernel is as fast
        assert type(wide(big).grad_fn).__name__ == "ConvolutionBackward0"
        narrow = gemm_conv.Conv2d(WIDE // 2, WIDE // 2, 3)
        assert type(narrow(torch.randn(1, WIDE // 2, 6, 6)).grad_fn).__name__ == "ConvolutionBackward0"
        strided = gemm_conv.Conv2d(WIDE, WIDE, 3, stride=2)
        assert type(strided(x).grad_fn).__name__ == "ConvolutionBackward0"
        padded = gemm_conv.Conv2d(WIDE, WIDE, 3, padding=1)
        assert type(padded(x).grad_fn).__name__ == "ConvolutionBackward0"


def test_is_an_nn_conv2d_with_the_same_state_dict() -> None:
    block = ResnetBlock(WIDE, "instance", False, bias=True)
    plain = nn.Conv2d(WIDE, WIDE, 3)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(isinstance(m, gemm_conv.Conv2d) for m in convs)
    assert convs[0].state_dict().keys() == plain.state_dict().keys()
    assert list(block.state_dict()) == ["conv_block.1.weight", "conv_block.1.bias",
                                        "conv_block.5.weight", "conv_block.5.bias"]


def test_a_frozen_weight_gets_no_gradient() -> None:
    conv = gemm_conv.Conv2d(WIDE, WIDE, 3, bias=False).requires_grad_(False)
    x = torch.randn(1, WIDE, 5, 5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().sum().backward()
    assert conv.weight.grad is None and x.grad is not None and x.grad.shape == x.shape


def test_gradient_checkpointing_recomputes_the_same_gradients() -> None:
    torch.manual_seed(0)
    block = ResnetBlock(WIDE, "instance", False, bias=True)
    x = torch.randn(1, WIDE, 6, 6)
    grads = []
    for checkpointed in (False, True):
        block.gradient_checkpointing = checkpointed
        block.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block(x)
        y.float().square().sum().backward()
        grads.append([p.grad.clone() for p in block.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
