"""Device choice and mixed precision, decided once from the config."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (this process's GPU under torchrun), then Apple MPS, then CPU."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"train.device: '{name}' requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision: fp16 needs a CUDA device (its grad scaler); use bf16 on CPU")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


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
