"""Model hashes: what the watermark's 24-bit prefix and the metadata's ``pixforge:ModelHash`` identify."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def weights_hash(state_dict: Mapping[str, Any]) -> str:
    """sha256 (hex) of a torch state_dict: every tensor's name, dtype, shape and bytes, in name order.

    Independent of device and memory format (tensors are hashed contiguous, on the CPU), so the same
    weights give the same hash whether they were loaded for a GPU, in channels_last or from another file.
    """
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_hash(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes (an exported ONNX model holds its weights)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
