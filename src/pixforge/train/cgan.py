"""The class-conditional GAN recipe (``model.kind: cgan``): label + noise -> an image of that class.

G draws from z ~ N(0, I) and the real batch's labels; D (a projection discriminator, ``nn/cgan.py``) judges
image and label together, so drawing a good image of the wrong class is penalised. Hinge loss (Lim & Ye 2017,
as Miyato & Koyama 2018 train the projection D); D's step, then G's, one each per iteration, with the two
time-scale Adam of SAGAN (Zhang et al. 2019; Heusel et al. 2017): G 1e-4, D 4e-4 (``train.lr_d``), β (0, 0.9).
DCGAN's Adam (2e-4 for both, β 0.5) collapsed on MNIST here, every seed drawing the same digit::

    L_D = E[max(0, 1 − D(x, y))] + E[max(0, 1 + D(G(z, y), y))],    L_G = −E[D(G(z, y), y)]

The noise comes from torch's global generator, which checkpoints save per rank: resume is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pixforge.config import Config
from pixforge.data.image_io import from_tensor
from pixforge.nn import adversarial_loss
from pixforge.nn.build import build_discriminator, build_generator
from pixforge.runtime.components import Component
from pixforge.runtime.device import autocast
from pixforge.train.recipe import Recipe, register_recipe

PREVIEW_SEED = 1234
"""The noise of the preview grids: the same every time, so grids of successive steps compare."""


def preview_noise(rows: int, z_dim: int, seed: int = PREVIEW_SEED) -> torch.Tensor:
    """One z per row (``rows`` × z_dim), from its own generator: the global stream is left alone."""
    return torch.randn(rows, z_dim, generator=torch.Generator().manual_seed(seed))


@register_recipe("cgan")
class ClassConditionalGAN(Recipe):
    loss_names = ("D", "G", "D_real", "D_fake")

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        if not cfg.data.class_names:
            raise ValueError("data.class_names is empty: the training data gave no classes")
        channels = cfg.data.output_nc
        g = self.add_network("G", build_generator(cfg, input_nc=0, output_nc=channels),
                             Component("generator", output_nc=channels))
        d = self.add_network("D", build_discriminator(cfg, input_nc=channels), Component("discriminator"))
        self.opt_G = self.add_optimizer("G", g.parameters())
        self.opt_D = self.add_optimizer("D", d.parameters(), lr=cfg.train.lr_d)
        self.gan = adversarial_loss(cfg.loss.gan_mode)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real = batch["image"].to(self.device, memory_format=self.memory_format, non_blocking=True)
        labels = torch.as_tensor(batch["label"], device=self.device)
        z = torch.randn(real.shape[0], self.cfg.model.z_dim, device=self.device)
        G, D, precision = self.wrapped["G"], self.wrapped["D"], self.precision

        with autocast(precision, self.device):
            fake = G(labels, z)
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            d_real = self.gan(D(real, labels), True, True)
            d_fake = self.gan(D(fake.detach(), labels), False, True)
        self.scaler.scale(d_real + d_fake).backward()
        self.scaler.step(self.opt_D)

        d = self.networks["D"]
        d.requires_grad_(False)  # G's step: D frozen and called unwrapped (no gradients of its own)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            g_loss = self.gan(d(fake, labels), True, False)
        self.scaler.scale(g_loss).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        d.requires_grad_(True)
        losses = {"D": d_real + d_fake, "G": g_loss, "D_real": d_real, "D_fake": d_fake}
        return {k: v.detach().float() for k, v in losses.items()}

    def sample(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G(labels, z) in eval mode (BatchNorm's running statistics), on the device, in [-1, 1]."""
        with self.evaluating(), torch.no_grad(), autocast(self.precision, self.device):
            return self.networks["G"](labels.to(self.device), z.to(self.device)).float()

    def preview_rows(self, dataset: Any, count: int) -> list[list[np.ndarray]]:
        """Rows = ``count`` noise vectors, columns = the classes (at most 10): one z drawn as every class."""
        del dataset
        classes = min(len(self.cfg.data.class_names or ()), 10)
        z = preview_noise(count, self.cfg.model.z_dim)
        labels = torch.arange(classes).repeat(count)
        images = self.sample(labels, z.repeat_interleave(classes, dim=0)).cpu()
        return [[from_tensor(images[r * classes + c]) for c in range(classes)] for r in range(count)]

    def validate(self, dataset: Any) -> dict[str, float]:
        del dataset  # judged by `pixforge eval` with a classifier (no paired targets exist)
        return {}
