"""SPADE (Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019).

Written from the paper (section 3 and appendix A). Normalisation layers wash a label map's information out of
the activations when the label map is the network's input; SPADE instead feeds it into every normalisation:

    SPADE(x, m) = gamma(m) * norm(x) + beta(m)    (norm parameter-free; gamma, beta convolutions of m)

applied as ``norm(x) * (1 + gamma) + beta`` so a freshly initialised layer starts near plain normalisation.
The generator starts from the label map downsampled to 1/32 (or, with the style encoder, from a code z) and
upsamples through SPADE residual blocks; it has no encoder, since the label map reaches every block anyway.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.checkpoint import checkpoint

from pixforge.nn.registry import register_generator

UPSAMPLINGS = 5
"""The paper's "normal" generator: 5 nearest-neighbour upsamplings, so it starts at 1/32 of the output size."""
STYLE_SIZE = 256
"""The style encoder sees the image resized to this square, six stride-2 convolutions make it 4x4."""


def _param_free_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise KeyError(f"unknown SPADE norm '{kind}'; known: batch, instance")


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation: gamma and beta per pixel from the label map (3x3 convolutions)."""

    def __init__(self, channels: int, label_nc: int, hidden: int = 128, norm: str = "batch") -> None:
        super().__init__()
        self.norm = _param_free_norm(norm, channels)
        self.shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    gradient_checkpointing = False
    """Recompute in backward: the 128-channel hidden map, gamma and beta at every resolution are most of the
    generator's activation memory. (The residual blocks' spectrally normalised convs are not recomputed: a
    second power iteration would change their weights between forward and backward.)"""

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training:
            return checkpoint(self._modulate, x, segmap, use_reentrant=False, preserve_rng_state=False)
        return self._modulate(x, segmap)

    def _modulate(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        # Nearest: a label map's values are classes, not intensities to blend.
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        hidden = self.shared(segmap)
        return self.norm(x) * (1 + self.gamma(hidden)) + self.beta(hidden)


class SPADEResBlock(nn.Module):
    """Two (SPADE, leaky ReLU, 3x3 conv) units and a shortcut, learned (SPADE + 1x1 conv) where widths change.

    The convolutions are spectrally normalised, as in the paper's generator."""

    def __init__(self, c_in: int, c_out: int, label_nc: int, hidden: int = 128, norm: str = "batch") -> None:
        super().__init__()
        middle = min(c_in, c_out)
        self.norm_0 = SPADE(c_in, label_nc, hidden, norm)
        self.conv_0 = spectral_norm(nn.Conv2d(c_in, middle, 3, padding=1))
        self.norm_1 = SPADE(middle, label_nc, hidden, norm)
        self.conv_1 = spectral_norm(nn.Conv2d(middle, c_out, 3, padding=1))
        self.learned_shortcut = c_in != c_out
        if self.learned_shortcut:
            self.norm_s = SPADE(c_in, label_nc, hidden, norm)
            self.conv_s = spectral_norm(nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """Label map (one-hot, B x label_nc x H x W, H and W multiples of 32) -> image.

    Widths 16ngf at 1/32 (head and two middle blocks) halving down to ngf at full size. Without the style
    encoder the start is a 3x3 conv of the label map downsampled to 1/32 (deterministic); with it, a linear map
    of the style code z to a 16ngf x (crop/32)^2 tensor, resized when an input has another size.
    """

    size_multiple = 2**UPSAMPLINGS

    def __init__(self, label_nc: int, output_nc: int = 3, ngf: int = 64, norm: str = "batch", hidden: int = 128,
                 use_vae: bool = False, z_dim: int = 256, crop_size: int = 256) -> None:
        super().__init__()
        self.use_vae, self.z_dim = use_vae, z_dim
        self.start = max(1, crop_size // self.size_multiple)
        top = 16 * ngf
        if use_vae:
            self.fc: nn.Module = nn.Linear(z_dim, top * self.start * self.start)
        else:
            self.fc = nn.Conv2d(label_nc, top, 3, padding=1)
        widths = [top, top, top, top, 8 * ngf, 4 * ngf, 2 * ngf, ngf]
        # head, middle 0, middle 1 at 1/32 ... 1/16 ... ; each following block after one more upsampling
        self.blocks = nn.ModuleList(SPADEResBlock(widths[i], widths[i + 1], label_nc, hidden, norm)
                                    for i in range(len(widths) - 1))
        self.conv_img = nn.Conv2d(ngf, output_nc, 3, padding=1)
        self._top = top

    # After which blocks the activations are upsampled (the paper's "normal": after head, middle 1, up 0..2).
    _UPSAMPLE_AFTER = frozenset({0, 2, 3, 4, 5})

    def forward(self, segmap: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``z``: the style code (``use_vae``); ``None`` gives z = 0, the prior's mode (deterministic)."""
        h, w = segmap.shape[2] // self.size_multiple, segmap.shape[3] // self.size_multiple
        if self.use_vae:
            if z is None:
                z = segmap.new_zeros(segmap.shape[0], self.z_dim)
            x = _resize_bilinear(self.fc(z).view(z.shape[0], self._top, self.start, self.start), h, w)
        else:
            x = self.fc(F.interpolate(segmap, size=(h, w), mode="nearest"))
        for i, block in enumerate(self.blocks):
            x = block(x, segmap)
            if i in self._UPSAMPLE_AFTER:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _resize_bilinear(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.interpolate(x, (h, w), mode="bilinear")`` as two matrix products with its 1-D weights (the same
    numbers). Traced for ONNX, F.interpolate's Resize loses the channel count that the next BatchNorm needs,
    and an ``if`` on the size would freeze the traced size; the products keep both right at every size."""
    def weights(n_out: int, n_in: int) -> torch.Tensor:  # n_out x n_in: an identity resized along one axis
        eye = torch.eye(n_in, dtype=x.dtype, device=x.device)[None, None]
        return F.interpolate(eye, size=(n_out, n_in), mode="bilinear", align_corners=False)[0, 0]
    return weights(h, x.shape[2]) @ x @ weights(w, x.shape[3]).t()


class StyleEncoder(nn.Module):
    """SPADE's image encoder: six stride-2 3x3 convs (instance norm, spectral norm) on the image resized to
    256x256, then two linear maps to the mean and log-variance of a ``z_dim`` Gaussian (the VAE's q(z|image))."""

    def __init__(self, input_nc: int = 3, ngf: int = 64, z_dim: int = 256) -> None:
        super().__init__()
        widths = [input_nc, ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf, 8 * ngf]
        self.layers = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(a, b, 3, 2, 1)), nn.InstanceNorm2d(b, affine=False))
            for a, b in itertools.pairwise(widths))
        flat = 8 * ngf * (STYLE_SIZE // 64) ** 2
        self.fc_mu = nn.Linear(flat, z_dim)
        self.fc_var = nn.Linear(flat, z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image
        if x.shape[2:] != (STYLE_SIZE, STYLE_SIZE):
            x = F.interpolate(x, size=(STYLE_SIZE, STYLE_SIZE), mode="bilinear", align_corners=False)
        for i, layer in enumerate(self.layers):
            x = layer(x if i == 0 else F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps: a sample that gradients can flow through (Kingma & Welling 2014); ``generator``
    draws eps from its own stream instead of the global one (inference's repeatable samples)."""
    eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + eps * torch.exp(0.5 * logvar)


@register_generator("spade")
def spade(input_nc: int = 36, output_nc: int = 3, ngf: int = 64, spade_norm: str = "batch", spade_hidden: int = 128,
          use_vae: bool = False, z_dim: int = 256, crop_size: int = 256) -> SPADEGenerator:
    """SPADE generator; ``input_nc`` is the label map's channels (one-hot classes + instance boundaries)."""
    return SPADEGenerator(input_nc, output_nc, ngf, spade_norm, spade_hidden, use_vae, z_dim, crop_size)
