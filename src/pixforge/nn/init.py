"""Weight initialisation of the references: ``normal`` (pix2pix/CycleGAN's ``init_type='normal'``, gain 0.02,
from DCGAN) or ``xavier`` (Glorot normal with that gain: CUT's)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


@torch.no_grad()
def init_weights(net: nn.Module, gain: float = 0.02, kind: str = "normal") -> nn.Module:
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            # A spectrally normalised layer computes `weight` from the stored original: initialise that.
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            if kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            else:
                nn.init.normal_(weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            # BatchNorm's scale starts near 1, not near 0 (reference `init_weights`).
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
