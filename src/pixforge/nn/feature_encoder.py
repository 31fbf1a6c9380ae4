"""pix2pixHD's feature encoder E (section 3.4): low-dimensional features per object instance, for multimodal output.

E is an encoder-decoder over the real image; its output is averaged within each instance, so every object
carries one ``feat_num``-vector that G takes as extra input channels. At test time those vectors come from k-means
cluster centres of the training set's features (``pixforge features cluster``), or are set by hand per instance.
The layers are the reference's ``Encoder`` (a global generator without residual blocks, keys ``model.*``).
"""

from __future__ import annotations

import torch
from torch import nn

from pixforge.nn.hd import global_layers, run_stages


def instance_mean(features: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
    """Replace each pixel's features by the mean over its instance (B x C x H x W, instances B x H x W ints).

    One scatter-add over all instances of the batch instead of the reference's loop over instances x channels;
    gradients flow to every pixel of an instance, as through the reference's mean.
    """
    b, c, h, w = features.shape
    ids = instances.reshape(b, h * w).long()
    # Instance ids are only unique within an image: offset them by the image's index in the batch.
    _, inverse = torch.unique(ids + torch.arange(b, device=ids.device)[:, None] * (int(ids.max()) + 1),
                              return_inverse=True)
    inverse = inverse.reshape(-1)
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c).float()
    count = int(inverse.max()) + 1
    sums = torch.zeros(count, c, device=flat.device).index_add_(0, inverse, flat)
    sizes = torch.bincount(inverse, minlength=count).clamp_min(1).unsqueeze(1)
    means = (sums / sizes)[inverse]
    return means.reshape(b, h, w, c).permute(0, 3, 1, 2).to(features.dtype)


class FeatureEncoder(nn.Module):
    def __init__(self, input_nc: int = 3, feat_num: int = 3, nef: int = 16, n_downsampling: int = 4,
                 norm: str = "instance") -> None:
        super().__init__()
        layers, self._starts = global_layers(input_nc, feat_num, nef, n_downsampling, 0, norm, dropout=False)
        self.model = nn.Sequential(*layers)
        self.feat_num = feat_num
        self.size_multiple = 2**n_downsampling

    gradient_checkpointing = False

    def forward(self, image: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
        """Real image (B x C x H x W) and instance ids (B x H x W) -> per-instance mean features in [-1, 1]."""
        out = run_stages(self.model, self._starts, image, self.gradient_checkpointing and self.training)
        return instance_mean(out, instances)
