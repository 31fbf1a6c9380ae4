"""The CycleGAN recipe (Zhu et al. 2017), as the reference's ``models/cycle_gan_model.py`` trains it.

Two generators map between unpaired domains (``G_A``: A -> B, ``G_B``: B -> A) and two discriminators judge
one image each (``D_A`` judges domain B, so it sees ``G_A``'s fakes; ``D_B`` judges domain A)::

    L_G = GAN(D_A(G_A(a)), real) + GAN(D_B(G_B(b)), real)
          + λ_A |G_B(G_A(a)) − a|₁ + λ_B |G_A(G_B(b)) − b|₁                       (cycle consistency)
          + λ_idt (λ_B |G_A(b) − b|₁ + λ_A |G_B(a) − a|₁)                          (identity, section 5.2)
    L_D_A = ½ [GAN(D_A(b), real) + GAN(D_A(pool_B(G_A(a))), fake)],  L_D_B likewise

One Adam over both generators, one over both discriminators; G's step first (D frozen), then D's, as the
reference orders them. Each discriminator sees a history of 50 past fakes (``train.pool_size``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pixforge.config import Config
from pixforge.data.image_io import from_tensor
from pixforge.nn import adversarial_loss, l1_loss
from pixforge.nn.build import build_discriminator, build_generator, set_gradient_checkpointing
from pixforge.runtime.components import Component
from pixforge.runtime.device import autocast
from pixforge.train.recipe import Recipe, register_recipe
from pixforge.train.samples import translate_at_scale


@register_recipe("cyclegan")
class CycleGAN(Recipe):
    loss_names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
    preview_generator = "G_A"

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        a_nc, b_nc = cfg.data.input_nc, cfg.data.output_nc
        g_a = self.add_network("G_A", build_generator(cfg, input_nc=a_nc, output_nc=b_nc),
                               Component("generator", direction="AtoB", input_nc=a_nc, output_nc=b_nc))
        g_b = self.add_network("G_B", build_generator(cfg, input_nc=b_nc, output_nc=a_nc),
                               Component("generator", direction="BtoA", input_nc=b_nc, output_nc=a_nc))
        d_a = self.add_network("D_A", build_discriminator(cfg, input_nc=b_nc), Component("discriminator"))
        d_b = self.add_network("D_B", build_discriminator(cfg, input_nc=a_nc), Component("discriminator"))
        for g in (g_a, g_b):
            set_gradient_checkpointing(g, cfg.train.gradient_checkpointing)
        self.opt_G = self.add_optimizer("G", [*g_a.parameters(), *g_b.parameters()])
        self.opt_D = self.add_optimizer("D", [*d_a.parameters(), *d_b.parameters()])
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.pool_A, self.pool_B = self.add_pool("fake_A"), self.add_pool("fake_B")

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        to = {"device": self.device, "memory_format": self.memory_format, "non_blocking": True}
        real_a, real_b = batch["A"].to(**to), batch["B"].to(**to)
        loss, precision = self.cfg.loss, self.precision
        G_A, G_B = self.wrapped["G_A"], self.wrapped["G_B"]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]

        # Generators: D frozen and called unwrapped (no gradients of theirs to all-reduce).
        for d in (d_a, d_b):
            d.requires_grad_(False)
        with autocast(precision, self.device):
            fake_b, fake_a = G_A(real_a), G_B(real_b)
            rec_a, rec_b = G_B(fake_b), G_A(fake_a)
            g_a = self.gan(d_a(fake_b), True, False)
            g_b = self.gan(d_b(fake_a), True, False)
            identity = loss.lambda_identity > 0
            idt_a, idt_b = (G_A(real_b), G_B(real_a)) if identity else (None, None)
        losses = {
            "G_A": g_a, "G_B": g_b,
            "cycle_A": l1_loss(rec_a.float(), real_a.float()) * loss.lambda_a,
            "cycle_B": l1_loss(rec_b.float(), real_b.float()) * loss.lambda_b,
        }
        if idt_a is not None and idt_b is not None:
            losses["idt_A"] = l1_loss(idt_a.float(), real_b.float()) * loss.lambda_b * loss.lambda_identity
            losses["idt_B"] = l1_loss(idt_b.float(), real_a.float()) * loss.lambda_a * loss.lambda_identity
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        self.scaler.step(self.opt_G)
        for d in (d_a, d_b):
            d.requires_grad_(True)

        # Discriminators: real up, a fake from the pool down, each halved (the reference's backward_D_basic).
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            losses["D_A"] = self._d_loss(self.wrapped["D_A"], real_b, self.pool_B.query(fake_b.detach()))
            losses["D_B"] = self._d_loss(self.wrapped["D_B"], real_a, self.pool_A.query(fake_a.detach()))
        self.scaler.scale(losses["D_A"] + losses["D_B"]).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        return {k: v.detach().float() for k, v in losses.items()}

    def _d_loss(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.gan(d(real), True, True) + self.gan(d(fake), False, True))

    # -- previews and validation -----------------------------------------------------------------------
    def _translate(self, name: str, x: torch.Tensor, scale: str) -> torch.Tensor:
        """One direction applied the way inference applies it (eval mode set by the caller)."""
        return translate_at_scale(self.networks[name], x, self.cfg.data, self.device, self.precision, scale)

    def _cycle(self, real: torch.Tensor, there: str, back: str, scale: str) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self._translate(there, real.unsqueeze(0), scale)
        return fake[0], self._translate(back, fake, scale)[0]

    @staticmethod
    def _scale(dataset: Any) -> str:
        """Whole images as stored go in at the trained scale, as ``translate`` would; training crops already are."""
        return "auto" if getattr(dataset, "whole", False) else "native"

    def preview_rows(self, dataset: Any, count: int) -> list[list[np.ndarray]]:
        """real A | fake B | reconstructed A, then real B | fake A | reconstructed B, per item."""
        rows, scale = [], self._scale(dataset)
        for i in range(min(count, len(dataset))):
            item = dataset[i]
            for real, there, back in ((item["A"], "G_A", "G_B"), (item["B"], "G_B", "G_A")):
                fake, rec = self._cycle(real, there, back, scale)
                rows.append([from_tensor(real), from_tensor(fake), from_tensor(rec)])
        return rows

    def validate(self, dataset: Any) -> dict[str, float]:
        """Mean cycle-reconstruction L1 each way (no paired targets exist to compare a translation with)."""
        total = {"val_cycle_A": 0.0, "val_cycle_B": 0.0}
        n, scale = min(len(dataset), 50), self._scale(dataset)
        with self.evaluating():
            for i in range(n):
                item = dataset[i]
                for key, real, there, back in (("val_cycle_A", item["A"], "G_A", "G_B"),
                                               ("val_cycle_B", item["B"], "G_B", "G_A")):
                    total[key] += (self._cycle(real, there, back, scale)[1] - real).abs().mean().item()
        return {k: v / max(n, 1) for k, v in total.items()}
