"""The pix2pix recipe (Isola et al. 2017): a conditional GAN plus an L1 term, D step then G step.

    L_D = ½ [ GAN(D(x, G(x)), fake) + GAN(D(x, y), real) ]  (+ gradient penalty for wgangp)
    L_G = GAN(D(x, G(x)), real) + λ_L1 · |y − G(x)|₁
"""

from __future__ import annotations

import torch

from pixforge.config import Config
from pixforge.nn import adversarial_loss, gradient_penalty, l1_loss
from pixforge.nn.build import build_discriminator, build_generator, set_gradient_checkpointing
from pixforge.runtime.components import Component
from pixforge.runtime.device import autocast
from pixforge.train.paired import PairedRecipe
from pixforge.train.recipe import register_recipe


@register_recipe("pix2pix")
class Pix2Pix(PairedRecipe):
    loss_names = ("G_GAN", "G_L1", "D_real", "D_fake", "D_GP")

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        generator = self.add_network("G", build_generator(cfg), Component("generator", direction="AtoB"))
        set_gradient_checkpointing(generator, cfg.train.gradient_checkpointing)
        discriminator = self.add_network("D", build_discriminator(cfg), Component("discriminator"))
        self.opt_G = self.add_optimizer("G", generator.parameters())
        self.opt_D = self.add_optimizer("D", discriminator.parameters())
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.pool = self.add_pool("pool")

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached losses (no host sync here)."""
        to = {"device": self.device, "memory_format": self.memory_format, "non_blocking": True}
        real_in, real_out = batch["input"].to(**to), batch["target"].to(**to)
        precision, lambda_l1 = self.precision, self.cfg.loss.lambda_l1
        G, D, discriminator = self.wrapped["G"], self.wrapped["D"], self.networks["D"]

        with autocast(precision, self.device):
            fake_out = G(real_in)

        # Discriminator: real pairs up, generated pairs (G frozen via detach) down.
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            fake_pair = self.pool.query(torch.cat([real_in, fake_out], 1).detach())
            real_pair = torch.cat([real_in, real_out], 1)
            d_fake = self.gan(D(fake_pair), False, True)
            d_real = self.gan(D(real_pair), True, True)
            loss_d = 0.5 * (d_fake + d_real)
            if self.cfg.loss.gan_mode == "wgangp":
                gp = gradient_penalty(discriminator, real_pair, fake_pair, self.cfg.loss.lambda_gp)
                loss_d = loss_d + gp
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_D)

        # Generator: fool D (called unwrapped: its weights are frozen, nothing to all-reduce) + L1.
        self.opt_G.zero_grad(set_to_none=True)
        discriminator.requires_grad_(False)
        with autocast(precision, self.device):
            g_gan = self.gan(discriminator(torch.cat([real_in, fake_out], 1)), True, False)
        g_l1 = l1_loss(fake_out.float(), real_out.float()) * lambda_l1
        self.scaler.scale(g_gan + g_l1).backward()
        discriminator.requires_grad_(True)
        self.scaler.step(self.opt_G)
        self.scaler.update()

        losses = {"D_real": d_real, "D_fake": d_fake, "G_GAN": g_gan, "G_L1": g_l1}
        if self.cfg.loss.gan_mode == "wgangp":
            losses["D_GP"] = gp
        return {k: v.detach().float() for k, v in losses.items()}
