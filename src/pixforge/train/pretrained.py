"""Starting a run from another run's weights (``train.init_from``, pix2pixHD's ``--load_pretrain``)."""

from __future__ import annotations

import torch
from torch import nn


def load_matching(net: nn.Module, state: dict[str, torch.Tensor], source: str, what: str,
                  partial: bool = False) -> int:
    """Copy the tensors of ``state`` whose names ``net`` has into it; return how many.

    A name ``net`` has with another shape is an error naming it (another width, another channel count);
    unless ``partial``, so is a name of ``net`` missing from ``state``.
    """
    ours = net.state_dict()
    wrong = [k for k in state if k in ours and state[k].shape != ours[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(f"{source}: its {what} '{k}' has shape {tuple(state[k].shape)}, this run's "
                         f"{tuple(ours[k].shape)} (train.init_from needs the same architecture there)")
    matching = {k: v for k, v in state.items() if k in ours}
    if not partial and len(matching) != len(ours):
        missing = next(k for k in ours if k not in state)
        raise ValueError(f"{source}: its {what} lacks '{missing}' (train.init_from needs the same architecture)")
    if not matching:
        raise ValueError(f"{source}: none of its {what} weights fit this run's {what}")
    net.load_state_dict(matching, strict=False)
    return len(matching)
