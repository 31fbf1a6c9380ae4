"""How a network runs at inference: eval mode, or the paper's test mode. Both are scoped to a ``with`` block.

The pix2pix paper applies the generator at test time as in training: dropout on (its only source of noise)
and batch normalisation from the statistics of the test batch, which was one image. The reference's test.py
without ``--eval`` does that, and it also updates the running statistics as a side effect. Here the paper's
mode normalises each image by its own statistics (as at batch 1, whatever the batch size the caller uses)
and leaves every buffer untouched, so a later eval-mode call or ONNX export sees the trained statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextlib.contextmanager
def evaluating(net: nn.Module) -> Iterator[None]:
    """Eval mode (running BatchNorm statistics, no dropout) for the block, then back to what it was."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


@contextlib.contextmanager
def paper_test_mode(net: nn.Module) -> Iterator[None]:
    """Train-mode behaviour without its side effects: dropout on, BatchNorm from the batch's own statistics,
    running statistics and their counters left exactly as they were. Call the network one image at a time
    inside for the paper's batch-1 statistics (``runtime.scale.apply_generator(..., one_by_one=True)``)."""
    was_training = net.training
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    tracked = [m.track_running_stats for m in norms]
    net.train()
    for m in norms:
        # In train mode with tracking off, BatchNorm normalises by the batch and updates nothing.
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in zip(norms, tracked, strict=True):
            m.track_running_stats = flag
        net.train(was_training)

