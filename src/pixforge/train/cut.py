"""The CUT / FastCUT recipe (Park, Efros, Zhang, Zhu, ECCV 2020), as the authors' ``models/cut_model.py`` trains it.

One generator maps A to B; a PatchGAN judges B; PatchNCE (``nn/patch_nce.py``) keeps each output patch
closer to the input patch at its place than to the image's other patches, through projection heads ``F``::

    L_D = ½ [GAN(D(b), real) + GAN(D(G(a)), fake)]
    L_G = λ_GAN GAN(D(G(a)), real) + λ_NCE NCE(a, G(a))                        (FastCUT)
    L_G = λ_GAN GAN(D(G(a)), real) + λ_NCE ½ [NCE(a, G(a)) + NCE(b, G(b))]     (CUT: the identity NCE term)

NCE averages the per-layer losses over ``model.nce_layers``. D's step first, then G's and the heads' together
(one Adam over both: the authors' two Adams with the same settings compute the same update). No image pool.
FastCUT flips G's input at random and the output's features back (``loss.flip_equivariance``).

The keys of PatchNCE (the input's features) carry no gradient: where the input went through G unflipped they
are taken from that forward instead of a second encoder pass, the same numbers for about a tenth less work.
Flips and patch locations come from the recipe's own generator, seeded alike on every rank, so N processes
with batch b draw what one process with batch N·b draws, and a resumed run draws what it would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pixforge.config import Config
from pixforge.data.image_io import from_tensor
from pixforge.nn import adversarial_loss
from pixforge.nn.build import build_discriminator, build_generator, set_gradient_checkpointing
from pixforge.nn.init import init_weights
from pixforge.nn.patch_nce import PatchProjector, feature_channels, patch_nce_loss, sample_patch_ids
from pixforge.runtime.components import Component
from pixforge.runtime.device import autocast
from pixforge.train.recipe import Recipe, register_recipe
from pixforge.train.samples import translate_at_scale


@register_recipe("cut")
class CUT(Recipe):
    loss_names = ("D_real", "D_fake", "G_GAN", "NCE", "NCE_Y")

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        a_nc, b_nc, m = cfg.data.input_nc, cfg.data.output_nc, cfg.model
        self.layers = list(m.nce_layers)
        g = build_generator(cfg, input_nc=a_nc, output_nc=b_nc)
        head = init_weights(PatchProjector(feature_channels(g, self.layers, a_nc), m.nce_head_nc),
                            m.init_gain, m.init_type)
        d = build_discriminator(cfg, input_nc=b_nc)
        self.add_network("G", g, Component("generator", direction="AtoB", input_nc=a_nc, output_nc=b_nc))
        self.add_network("F", head, Component("head"))
        self.add_network("D", d, Component("discriminator"))
        set_gradient_checkpointing(g, cfg.train.gradient_checkpointing)
        self.opt_D = self.add_optimizer("D", d.parameters())
        self.opt_G = self.add_optimizer("G", [*g.parameters(), *head.parameters()])
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.rng = torch.Generator().manual_seed(cfg.train.seed)
        """Flips and patch locations: the same stream on every rank."""

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        to = {"device": self.device, "memory_format": self.memory_format, "non_blocking": True}
        real_a, real_b = batch["A"].to(**to), batch["B"].to(**to)
        loss, precision, n = self.cfg.loss, self.precision, real_a.shape[0]
        use_nce = loss.lambda_nce > 0
        identity = loss.nce_idt and use_nce
        G, D = self.wrapped["G"], self.networks["D"]

        real = torch.cat((real_a, real_b)) if identity else real_a
        flipped = loss.flip_equivariance and bool(torch.rand((), generator=self.rng) < 0.5)
        keys: list[torch.Tensor] | None = None
        with autocast(precision, self.device):
            if flipped:
                fake = G(torch.flip(real, [3]))
            elif use_nce:
                fake, features = G(real, layers=self.layers)
                keys = [f.detach() for f in features]
            else:
                fake = G(real)
        fake_b = fake[:n]

        # Discriminator: real up, fake down, halved.
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            d_fake = self.gan(self.wrapped["D"](fake_b.detach()), False, True)
            d_real = self.gan(self.wrapped["D"](real_b), True, True)
        self.scaler.scale(0.5 * (d_fake + d_real)).backward()
        self.scaler.step(self.opt_D)

        # Generator and heads: D frozen and called unwrapped (no gradients of its own to all-reduce).
        D.requires_grad_(False)
        losses = {"D_real": d_real, "D_fake": d_fake}
        with autocast(precision, self.device):
            losses["G_GAN"] = self.gan(D(fake_b), True, False) * loss.lambda_gan
            total = losses["G_GAN"]
            if use_nce:
                if keys is None:  # the input went in flipped: its own features are the keys
                    with torch.no_grad():
                        keys = G(real, layers=self.layers, encode_only=True)
                losses["NCE"] = self._nce([k[:n] for k in keys], fake_b, n, flipped)
                if identity:
                    losses["NCE_Y"] = self._nce([k[n:] for k in keys], fake[n:], n, flipped)
                    total = total + 0.5 * (losses["NCE"] + losses["NCE_Y"])
                else:
                    total = total + losses["NCE"]
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        D.requires_grad_(True)
        return {k: v.detach().float() for k, v in losses.items()}

    def _nce(self, keys: list[torch.Tensor], output: torch.Tensor, n: int, flipped: bool) -> torch.Tensor:
        """λ_NCE × PatchNCE between an input's features (``keys``) and its output's, averaged over the layers."""
        loss, heads = self.cfg.loss, self.wrapped["F"]
        queries = self.wrapped["G"](output, layers=self.layers, encode_only=True)
        if flipped:
            queries = [torch.flip(q, [3]) for q in queries]
        ids = sample_patch_ids(keys, self.cfg.model.num_patches, self.rng)
        with torch.no_grad():
            projected_keys = heads(keys, ids)
        projected_queries = heads(queries, ids)
        per_layer = [patch_nce_loss(q, k, n, loss.nce_t).mean() * loss.lambda_nce
                     for q, k in zip(projected_queries, projected_keys, strict=True)]
        return torch.stack(per_layer).sum() / len(per_layer)

    def rank_state(self) -> dict[str, Any]:
        return {**super().rank_state(), "rng": self.rng.get_state()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        super().load_rank_state(state)
        self.rng.set_state(state["rng"])

    # -- previews and validation -----------------------------------------------------------------------
    def _translate(self, x: torch.Tensor, dataset: Any) -> torch.Tensor:
        # Whole images as stored go in at the trained scale, as ``translate`` would; training crops already are.
        scale = "auto" if getattr(dataset, "whole", False) else "native"
        return translate_at_scale(self.networks["G"], x.unsqueeze(0), self.cfg.data, self.device,
                                  self.precision, scale)[0]

    def preview_rows(self, dataset: Any, count: int) -> list[list[np.ndarray]]:
        """real A | fake B | real B (| G(B), the identity, where CUT trains it), per item."""
        rows = []
        for i in range(min(count, len(dataset))):
            item = dataset[i]
            row = [item["A"], self._translate(item["A"], dataset), item["B"]]
            if self.cfg.loss.nce_idt:
                row.append(self._translate(item["B"], dataset))
            rows.append([from_tensor(x) for x in row])
        return rows

    def validate(self, dataset: Any) -> dict[str, float]:
        """Mean L1 between B and G(B) (no paired targets exist; a G that keeps B as it is keeps content)."""
        if self.cfg.data.input_nc != self.cfg.data.output_nc:
            return {}
        n, total = min(len(dataset), 50), 0.0
        with self.evaluating():
            for i in range(n):
                b = dataset[i]["B"]
                total += (self._translate(b, dataset).cpu() - b).abs().mean().item()
        return {"val_idt_B": total / max(n, 1)}
