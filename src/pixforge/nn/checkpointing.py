"""Activation (gradient) checkpointing: trade compute for memory on large generators."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def call(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return block(x)


def recompute(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``block`` keeping only its input; backward recomputes the rest (dropout masks replayed)."""
    return checkpoint(block, x, use_reentrant=False, preserve_rng_state=True)
