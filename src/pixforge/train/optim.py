"""Optimisers of the recipes: the paper's Adam, and restoring its state exactly as it was."""

from __future__ import annotations

from typing import Any

import torch

from pixforge.config import Config


def make_adam(params: Any, cfg: Config, device: torch.device, fast: bool = True) -> torch.optim.Adam:
    # Fused Adam updates all parameters in one kernel; the reference's per-parameter loop is `fast=False`.
    kwargs: dict[str, Any] = {"fused": True} if fast else {"foreach": False}
    if fast and device.type not in ("cuda", "cpu"):
        kwargs = {"foreach": True}
    t = cfg.train
    return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), **kwargs)


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict`` with each per-parameter tensor in its parameter's memory layout.

    ``load_state_dict`` restores moments as they were saved (contiguous), while channels_last parameters
    are NHWC. PyTorch's fused CPU Adam pairs a parameter with its moments element by element in memory
    order, so mismatched layouts silently mix up the moments of different weights on every step after a
    resume (seen with torch 2.13). Matching the layouts keeps a resumed run bit for bit an uninterrupted one.
    """
    opt.load_state_dict(state)
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
