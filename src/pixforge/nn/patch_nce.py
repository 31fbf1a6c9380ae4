"""PatchNCE (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020).

A patch of the output should be closer to the input patch at the same place than to the other input patches
of that image: features of G's encoder at a few layers, for the input and for the output, are sampled at the
same ``num_patches`` locations, projected by a small MLP per layer (``PatchProjector``, the authors' ``netF``),
L2-normalised, and scored with a softmax cross-entropy whose positive is the same location::

    ℓ(q, k⁺, k⁻) = −log exp(q·k⁺/τ) / (exp(q·k⁺/τ) + Σ exp(q·k⁻/τ))

As the authors' ``patchnce.py``: the input side (keys) is detached, negatives come from the same image only,
and a location's similarity with itself among the negatives is replaced by −10 before dividing by τ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PatchProjector(nn.Module):
    """One two-layer MLP per NCE layer (``mlp_<i>``: Linear, ReLU, Linear), then L2 normalisation.

    Built from the layers' channel counts, so it exists (and is initialised, and saved) before any data is
    seen; the authors build it on the first forward. Key names are theirs (``mlp_0.0.weight``, ...).
    """

    def __init__(self, channels: Sequence[int], width: int = 256) -> None:
        super().__init__()
        self.channels = list(channels)
        for i, c in enumerate(self.channels):
            self.add_module(f"mlp_{i}", nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)))

    def forward(self, features: Sequence[torch.Tensor], patch_ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each (N, C, H, W) feature map sampled at its ids (the same locations in every image of the batch)
        -> (N · len(ids), width) unit vectors."""
        out = []
        for i, (feat, ids) in enumerate(zip(features, patch_ids, strict=True)):
            sampled = feat.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :].flatten(0, 1)
            projected = getattr(self, f"mlp_{i}")(sampled)
            # The authors' x / (|x| + 1e-7), with a norm whose gradient at 0 is 0: their pow(0.5) gives NaN
            # there, which a small G meets (a location where every ReLU before a bias-free conv is off).
            norm = torch.linalg.vector_norm(projected, dim=1, keepdim=True)
            out.append(projected.div(norm + 1e-7))
        return out


def sample_patch_ids(features: Sequence[torch.Tensor], num_patches: int, generator: torch.Generator
                     ) -> list[torch.Tensor]:
    """Per feature map, ``num_patches`` distinct locations (of H·W) at random, or all of them if fewer."""
    ids = []
    for feat in features:
        locations = feat.shape[2] * feat.shape[3]
        chosen = torch.randperm(locations, generator=generator)[:min(num_patches, locations)]
        ids.append(chosen.to(feat.device))
    return ids


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, batch_size: int, tau: float = 0.07) -> torch.Tensor:
    """Per-patch PatchNCE losses, shape (N · P,), for ``query`` (output) and ``key`` (input) of shape (N · P, C).

    ``batch_size`` N groups the patches by image, so each patch's negatives are the other P − 1 patches of
    its own image's key.
    """
    query, key = query.float(), key.detach().float()
    n_patches, dim = query.shape
    positive = torch.bmm(query.view(n_patches, 1, dim), key.view(n_patches, dim, 1)).view(n_patches, 1)
    q, k = query.view(batch_size, -1, dim), key.view(batch_size, -1, dim)
    per_image = q.shape[1]
    negative = torch.bmm(q, k.transpose(2, 1))
    same = torch.eye(per_image, device=query.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(same, -10.0).view(-1, per_image)
    logits = torch.cat((positive, negative), dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(n_patches, dtype=torch.long, device=query.device), reduction="none")


def feature_channels(generator: nn.Module, layers: Sequence[int], input_nc: int, size: int = 64) -> list[int]:
    """Channels of ``generator``'s outputs at ``layers``, from one forward of a small blank image (no RNG)."""
    param = next(generator.parameters())
    blank = torch.zeros(1, input_nc, size, size, device=param.device, dtype=param.dtype)
    with torch.no_grad():
        features = generator(blank, layers=list(layers), encode_only=True)
    if len(features) != len(layers):
        raise ValueError(f"model.nce_layers {list(layers)}: the generator has layers 0..{len(generator.model) - 1}")
    return [f.shape[1] for f in features]
