"""SPADE's multimodal synthesis at inference: a style image chooses the look.

A SPADE run trained with its style encoder (``model.use_vae``) learns q(z | image), a Gaussian over style codes,
and its generator starts from a code z. Without a style image z = 0, the prior's mode: one deterministic look.
With one, z is the encoder's mean for that image, so the same style image always gives the same output (the
paper samples around the mean; ``encode(..., sample=True)`` does that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixforge.config import Config
from pixforge.data.image_io import image_to_tensor
from pixforge.nn.build import build_style_encoder
from pixforge.nn.spade import reparameterize
from pixforge.runtime.checkpoint import checkpoint_parts, load_checkpoint
from pixforge.runtime.generator import check_finite, load_strict


class StyleError(ValueError):
    """A style image was given to a model that cannot take one; the message says why."""


def load_style_encoder(file: str | Path, config: Config) -> nn.Module | None:
    """The run's style encoder in eval mode, or None where there is none (no ``use_vae``, or a file without
    it: a weights export made before exports kept it)."""
    if not config.model.use_vae or "E" not in checkpoint_parts(file):
        return None
    _, state = load_checkpoint(file, only="E")
    check_finite(state["E"], file)
    encoder = build_style_encoder(config, init=False)
    load_strict(encoder, state["E"], file)
    return encoder.eval()


class StyleCodes:
    """Turns style images into the codes a SPADE generator starts from."""

    def __init__(self, config: Config, encoder: nn.Module | None, source: str | Path | None = None) -> None:
        self.config, self.encoder, self.source = config, encoder, source

    def _check(self) -> nn.Module:
        if self.config.model.generator != "spade" or not self.config.model.use_vae:
            raise StyleError("style: only SPADE models trained with the style encoder (model.use_vae: true) take "
                             "a style image; this model has no style code")
        if self.encoder is None:
            where = f"{self.source}: " if self.source else ""
            raise StyleError(f"{where}holds no style encoder weights ('E'); use the run directory or its "
                             f"training checkpoint")
        return self.encoder

    @torch.inference_mode()
    def encode(self, image: Any, sample: bool = False, seed: int | None = None) -> torch.Tensor:
        """A style image (PIL, HxWxC array, or C x H x W tensor in [-1, 1]) -> its code, 1 x z_dim, float32."""
        encoder = self._check()
        channels = self.config.data.output_nc
        if not isinstance(image, torch.Tensor):
            image = image_to_tensor(image, channels)
        if image.dim() != 3 or image.shape[0] != channels:
            raise StyleError(f"style: expected an image with {channels} channels, got {tuple(image.shape)}")
        mu, logvar = encoder(image.float().unsqueeze(0))
        if not sample:
            return mu.float()
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        return reparameterize(mu.float(), logvar.float(), rng)
