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


def resolve_channels_last(setting: bool | None, precision: str) -> bool:
    """``None`` (auto): NHWC with reduced precision, where oneDNN's and cuDNN's fast kernels want it."""
    return precision in ("bf16", "fp16") if setting is None else setting


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


def with_cast_conv_weights(module: nn.Module, precision: str) -> nn.Module:
    """A copy of ``module`` for inference under :func:`autocast`, its convolutions' weights and biases stored
    in ``precision``: autocast would round them to that type on every call (a sixth of a unet_256 forward on
    this CPU); stored rounded the same way, they give the same outputs. Normalisation layers, and convs whose
    weight a parametrization computes (spectral norm), keep float32 as under autocast. ``fp32``: ``module``."""
    if precision == "fp32":
        return module
    from torch.nn.utils import parametrize

    copy = deepcopy(module)
    for m in copy.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and not parametrize.is_parametrized(m):
            m.to(_DTYPES[precision])
    return copy


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
