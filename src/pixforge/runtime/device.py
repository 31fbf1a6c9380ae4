"""Device choice and mixed precision, decided once from the config."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from copy import deepcopy

import torch
from torch import nn

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(name: str = "auto", local_rank: int = 0, option: str = "train.device") -> torch.device:
    """``auto``: CUDA (this process's GPU under torchrun), then Apple MPS, then CPU.

    ``option`` is how the caller's user spelled the setting (``train.device``, ``--device``): errors name it.
    """
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"{option}: '{name}' is not a device (expected auto, cpu, cuda, cuda:N or mps)") \
                from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{option}: '{name}' requested but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"{option}: '{name}' requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_precision(precision: str, device: torch.device, option: str = "train.precision") -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{option}: '{precision}' is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"{option}: fp16 needs a CUDA device (its grad scaler); use bf16 on CPU")


def resolve_precision(precision: str, device: torch.device, option: str = "train.precision") -> str:
    """``auto`` -> ``bf16`` where the device computes bf16 natively, else ``fp32``; others as given."""
    check_precision(precision, device, option)
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def resolve_channels_last(setting: bool | None, precision: str, device: torch.device) -> bool:
    """``None`` (auto): NHWC with reduced precision, where oneDNN's and cuDNN's fast kernels want it, and on
    the CPU in fp32 too (oneDNN's fp32 convolutions: a resnet_9blocks step 1.3x faster in NHWC on an Intel
    Xeon without bf16)."""
    if setting is not None:
        return setting
    return precision in ("bf16", "fp16") or device.type == "cpu"


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Mixed precision for the block; ``precision`` is already resolved (``fp32``, ``bf16`` or ``fp16``)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def inference_copy(module: nn.Module, precision: str) -> nn.Module:
    """An eval-mode copy of ``module`` for fast inference under :func:`autocast` at a reduced ``precision``:
    each BatchNorm that directly follows a convolution is folded into it (its running statistics become the
    conv's weight and bias: one pass over the activations less), and the convolutions' weights and biases are
    stored in ``precision`` (autocast would round them on every call). Together a sixth of a unet_256 forward
    on this CPU; outputs differ from the unfolded model by bf16 rounding (about 5e-4 of the [-1, 1] range).
    Normalisation layers left, and convs whose weight a parametrization computes (spectral norm), keep float32
    as under autocast. ``fp32``: ``module`` itself, untouched (fp32 keeps the reference's exact numbers)."""
    if precision == "fp32":
        return module
    from torch.nn.utils import parametrize

    copy = deepcopy(module).eval()
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    for seq in list(copy.modules()):
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if (isinstance(seq[i], convs) and isinstance(seq[i + 1], nn.BatchNorm2d)
                        and not parametrize.is_parametrized(seq[i]) and seq[i + 1].running_var is not None):
                    _fold_batchnorm(seq[i], seq[i + 1])
                    seq[i + 1] = nn.Identity()
    for m in copy.modules():
        if isinstance(m, convs) and not parametrize.is_parametrized(m):
            m.to(_DTYPES[precision])
    return copy


@torch.no_grad()
def _fold_batchnorm(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """conv followed by eval-mode bn -> conv alone: y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
    shape = [1] * conv.weight.dim()
    shape[1 if isinstance(conv, nn.ConvTranspose2d) else 0] = -1  # the output-channel axis
    conv.weight.mul_(scale.view(shape))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.clone())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 autocast is a real speed-up (Linux only)."""
    try:
        flags = open("/proc/cpuinfo").read()  # noqa: SIM115
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def should_compile(setting: bool | None, device: torch.device) -> bool:
    """``train.compile``: explicit True/False wins; ``None`` compiles on CUDA only (measured: no CPU gain)."""
    return device.type == "cuda" if setting is None else setting
