"""Where the learned metrics (LPIPS, FID/KID) find their weights: local files only, never a download.

The standard weight files are looked up by their usual names in one folder: ``--weights DIR``, else
``$PIXFORGE_WEIGHTS``, else ``~/.cache/pixforge/weights``. A missing file makes the metric skip itself with
one line naming the file it expected; the evaluation goes on without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
"""torchvision's ImageNet AlexNet (the LPIPS backbone), as torchvision downloads it."""
LPIPS_ALEX_FILE = "lpips_v0.1_alex.pth"
"""The LPIPS v0.1 linear heads for AlexNet: ``lpips/weights/v0.1/alex.pth`` of the lpips package, renamed."""
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
"""pytorch-fid's port of the TensorFlow FID Inception v3 (the weights every published FID uses)."""


class MissingWeights(FileNotFoundError):
    """A learned metric's weight file is not there; the message names it."""


def weights_dir(given: str | Path | None = None) -> Path:
    if given is not None:
        return Path(given).expanduser()
    env = os.environ.get("PIXFORGE_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pixforge" / "weights"


def load_state(folder: Path, name: str, metric: str) -> dict[str, torch.Tensor]:
    """A standard ``.pth`` state dict, read with ``weights_only=True`` (tensors only, nothing unpickled)."""
    path = folder / name
    if not path.is_file():
        raise MissingWeights(f"{metric} skipped: weights not found, expected {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def load_into(net: nn.Module, state: dict[str, torch.Tensor], source: str, prefix: str = "") -> nn.Module:
    """Load the keys of ``state`` under ``prefix`` into ``net``; every key of ``net`` must be found, with its
    shape (``num_batches_tracked`` aside: older files lack it)."""
    own = net.state_dict()
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix):] in own}
    missing = [k for k in own if k not in picked and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{source}: {len(missing)} expected keys missing (first: {prefix}{missing[0]})")
    for key, value in picked.items():
        if value.shape != own[key].shape:
            raise ValueError(f"{source}: {prefix}{key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(own[key].shape)}")
    net.load_state_dict(picked, strict=False)
    return net.eval()
