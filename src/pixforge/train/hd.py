"""Label map -> image recipes: pix2pixHD (Wang et al. 2018) and SPADE (Park et al. 2019).

Both train a generator against a multi-scale discriminator with an adversarial loss, discriminator feature
matching and a VGG perceptual loss::

    L_G = GAN(D(x, G(x)), real) + λ_feat · FM(D(x, G(x)), D(x, y)) + λ_vgg · VGG(G(x), y)  [+ λ_kld · KL]
    L_D = s · [GAN(D(x, G(x)), fake) + GAN(D(x, y), real)]

x is the one-hot label map (+ instance boundaries), y the photo; with ``data.label_nc`` 0, x is an image (RGB
or grey, as the reference's ``--label_nc 0``). As the reference pix2pixHD, the generator's and
the discriminator's losses are computed with the same discriminator weights (G is stepped first, then D), the
real pair's D features serve both, and the adversarial loss is summed over D's scales with s = 1/2; SPADE's
recipe averages over scales with s = 1 and uses the hinge loss (its preset), as its paper does.

pix2pixHD's feature encoder (``model.features``) adds per-instance features of the real image to G's input;
SPADE's style encoder (``model.use_vae``) gives G a code z sampled from q(z | y). Either is trained with G.
A ``local`` G can keep its global part frozen for the first ``train.niter_fix_global`` epochs.

Previews and validation use ``sample_generator``, which maps the label input alone to an image: the
trained G itself, or, with the feature encoder, G fed the neutral feature value 0 (the middle of the encoder's
tanh range; inference uses cluster centres or edited values instead, see ``pixforge.infer.features``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixforge.config import Config
from pixforge.nn import adversarial_loss, feature_matching_loss, kl_divergence, multiscale_adversarial_loss
from pixforge.nn.build import (
    build_discriminator,
    build_feature_encoder,
    build_generator,
    build_style_encoder,
    set_gradient_checkpointing,
    size_multiple,
)
from pixforge.nn.hd import LocalEnhancer
from pixforge.nn.spade import reparameterize
from pixforge.nn.vgg import VGGLoss, load_vgg19
from pixforge.runtime.components import Component
from pixforge.runtime.device import autocast
from pixforge.train.optim import StepInBackward
from pixforge.train.paired import PairedRecipe
from pixforge.train.pretrained import load_matching
from pixforge.train.recipe import register_recipe


class LabelMapGAN(PairedRecipe):
    """What pix2pixHD and SPADE share; subclasses say how the generator is called and what the encoder is."""

    loss_names = ("G_GAN", "G_GAN_Feat", "G_VGG", "KLD", "D_real", "D_fake")
    scale_reduce = "sum"
    """How the adversarial loss combines D's scales."""
    d_factor = 0.5
    """Weight of the discriminator's (fake + real) loss."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        if cfg.model.features and cfg.data.label_nc == 0:
            raise ValueError("model.features: the feature encoder pools per object instance, which needs label maps "
                             "(data.label_nc > 0)")
        super().__init__(cfg, device)
        t = cfg.train
        self.net_G = self.add_network("G", build_generator(cfg), Component("generator", direction="AtoB"))
        self.discriminator = self.add_network("D", build_discriminator(cfg), Component("discriminator"))
        encoder = self.build_encoder(cfg)
        self.encoder: nn.Module | None = None if encoder is None else \
            self.add_network("E", encoder, Component("encoder"))
        for net in (self.net_G, self.encoder):
            if net is not None:
                set_gradient_checkpointing(net, t.gradient_checkpointing)
        self.vgg = VGGLoss(load_vgg19(cfg.loss.vgg_weights)).to(device, memory_format=self.memory_format) \
            if cfg.loss.vgg_loss else None
        g_params = list(self.net_G.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        self.opt_G = self.add_optimizer("G", g_params)
        self.opt_D = self.add_optimizer("D", self.discriminator.parameters(), lr=t.lr_d or t.lr)
        # G's update runs inside its backward (no step below) unless loss scaling needs every gradient first.
        self._g_in_backward = StepInBackward(self.opt_G) if t.step_in_backward and self.precision != "fp16" \
            else None
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.pool = self.add_pool("pool")
        self._coarse_frozen = False

    @property
    def sample_generator(self) -> nn.Module:
        """G, or for a feature-encoder pix2pixHD run G fed the neutral feature value 0."""
        if self.encoder is None or self.cfg.model.kind != "pix2pixhd":
            return self.net_G
        return NeutralFeatures(self.net_G, self.cfg.model.feat_num)

    @property
    def G(self) -> nn.Module:
        return self.wrapped["G"]

    @property
    def D(self) -> nn.Module:
        return self.wrapped["D"]

    @property
    def E(self) -> nn.Module | None:
        return self.wrapped.get("E")

    # -- what the two recipes do differently ---------------------------------------------------------------
    def build_encoder(self, cfg: Config) -> nn.Module | None:
        raise NotImplementedError

    def generate(self, label: torch.Tensor, batch: dict[str, Any], real: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's output for the label map (+ what the encoder makes of the real image) and any extra losses."""
        raise NotImplementedError

    # -- the step ------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """G step then D step, both against the discriminator as it was before either (the reference's order)."""
        to = {"device": self.device, "memory_format": self.memory_format, "non_blocking": True}
        label, real = batch["input"].to(**to), batch["target"].to(**to)
        self._check_size(label)
        precision, loss = self.precision, self.cfg.loss

        with autocast(precision, self.device):
            fake, extra = self.generate(label, batch, real)
            real_features = self.D(torch.cat([label, real], 1))  # kept for the D step below
            # G: its gradients only; D is called unwrapped with frozen weights (nothing to all-reduce).
            self.discriminator.requires_grad_(False)
            fake_features = self.discriminator(torch.cat([label, fake], 1))
            self.discriminator.requires_grad_(True)
            g_gan = multiscale_adversarial_loss(self.gan, fake_features, True, False, self.scale_reduce)
            detached = [[f.detach() for f in scale] for scale in real_features]
            g_feat = feature_matching_loss(fake_features, detached) * loss.lambda_feat
            losses: dict[str, torch.Tensor] = {"G_GAN": g_gan, "G_GAN_Feat": g_feat, **extra}
            if self.vgg is not None:
                losses["G_VGG"] = self.vgg(fake, real) * loss.lambda_vgg
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        if self._g_in_backward is None:
            self.scaler.step(self.opt_G)

        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            fake_pair = self.pool.query(torch.cat([label, fake.detach()], 1))
            d_fake = multiscale_adversarial_loss(self.gan, self.D(fake_pair), False, True, self.scale_reduce)
            d_real = multiscale_adversarial_loss(self.gan, real_features, True, True, self.scale_reduce)
        self.scaler.scale(self.d_factor * (d_fake + d_real)).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        losses.update(D_real=d_real, D_fake=d_fake)
        return {k: v.detach().float() for k, v in losses.items()}

    def _check_size(self, label: torch.Tensor) -> None:
        multiple = size_multiple(self.net_G)
        h, w = label.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"model.generator '{self.cfg.model.generator}' needs heights and widths that are "
                             f"multiples of {multiple}, the data gives {w}x{h}; choose data.crop_size / load_size "
                             f"(or data.preprocess) so they are")

    # -- schedule, distribution, state ---------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        """Coarse-to-fine (pix2pixHD 3.2): a ``local`` G trains only its outermost enhancer while
        ``epoch < niter_fix_global``, then everything. Derived from the epoch alone, so resuming on either
        side of the switch lands in the right state."""
        if not isinstance(self.net_G, LocalEnhancer):
            return
        frozen = epoch < self.cfg.train.niter_fix_global
        if frozen == self._coarse_frozen:
            return
        for p in self.net_G.coarse_parameters():
            p.requires_grad_(not frozen)
        self._coarse_frozen = frozen
        self.rewrap("G")  # DDP fixes the set of parameters it reduces when it wraps a module

    def wrap_distributed(self, device: torch.device) -> None:
        if self._g_in_backward is not None:  # DDP averages the gradients after backward: step after it
            self._g_in_backward.remove()
            self._g_in_backward = None
        super().wrap_distributed(device)

    def load_pretrained(self, state: dict[str, Any], source: str) -> None:
        """pix2pixHD's ``--load_pretrain``: a ``global`` run's G fills a ``local`` G's global part (the
        enhancers start fresh); D and the encoder load where their layers match (a D with more scales keeps
        its extra ones fresh)."""
        partial = isinstance(self.net_G, LocalEnhancer)
        load_matching(self.net_G, state["G"], source, "generator", partial=partial)
        if "D" in state:
            load_matching(self.discriminator, state["D"], source, "discriminator", partial=True)
        if self.encoder is not None and "E" in state:
            load_matching(self.encoder, state["E"], source, "encoder")


class NeutralFeatures(nn.Module):
    """G of a feature-encoder run, fed its label input plus the neutral feature value 0 (for samples and
    validation during training, before any features have been clustered)."""

    def __init__(self, generator: nn.Module, feat_num: int) -> None:
        super().__init__()
        self.generator, self.feat_num = generator, feat_num
        self.size_multiple = size_multiple(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x.new_zeros(x.shape[0], self.feat_num, *x.shape[2:])
        return self.generator(torch.cat([x, zeros], 1))


@register_recipe("pix2pixhd")
class Pix2PixHD(LabelMapGAN):
    def build_encoder(self, cfg: Config) -> nn.Module | None:
        return build_feature_encoder(cfg) if cfg.model.features else None

    def generate(self, label: torch.Tensor, batch: dict[str, Any], real: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.E is None:
            return self.G(label), {}
        features = self.E(real, batch["instance"].to(self.device))
        return self.G(torch.cat([label, features.to(label.dtype)], 1)), {}


@register_recipe("spade")
class Spade(LabelMapGAN):
    scale_reduce = "mean"
    d_factor = 1.0

    def build_encoder(self, cfg: Config) -> nn.Module | None:
        return build_style_encoder(cfg) if cfg.model.use_vae else None

    def generate(self, label: torch.Tensor, batch: dict[str, Any], real: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.E is None:
            return self.G(label), {}
        mu, logvar = self.E(real)
        z = reparameterize(mu.float(), logvar.float())
        return self.G(label, z), {"KLD": kl_divergence(mu.float(), logvar.float()) * self.cfg.loss.lambda_kld}
