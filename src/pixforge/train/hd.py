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

The loop samples and validates with ``recipe.generator``, which maps the label input alone to an image: the
trained G itself, or, with the feature encoder, G fed the neutral feature value 0 (the middle of the encoder's
tanh range; inference uses cluster centres or edited values instead, see ``pixforge.infer.features``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

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
from pixforge.runtime.device import autocast, resolve_channels_last, resolve_precision
from pixforge.train.image_pool import ImagePool
from pixforge.train.models import register_recipe
from pixforge.train.optim import StepInBackward, load_optimizer_state, make_adam
from pixforge.train.pretrained import load_matching


class LabelMapGAN:
    """What pix2pixHD and SPADE share; subclasses say how the generator is called and what the encoder is."""

    scale_reduce = "sum"
    """How the adversarial loss combines D's scales."""
    d_factor = 0.5
    """Weight of the discriminator's (fake + real) loss."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        if cfg.model.features and cfg.data.label_nc == 0:
            raise ValueError("model.features: the feature encoder pools per object instance, which needs label maps "
                             "(data.label_nc > 0)")
        self.cfg, self.device = cfg, device
        t = cfg.train
        self.precision = resolve_precision(t.precision, device)
        channels_last = resolve_channels_last(t.channels_last, self.precision)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net_G = build_generator(cfg).to(device, memory_format=self.memory_format)
        self.discriminator = build_discriminator(cfg).to(device, memory_format=self.memory_format)
        self.encoder: nn.Module | None = self.build_encoder(cfg)
        if self.encoder is not None:
            self.encoder.to(device, memory_format=self.memory_format)
        for net in (self.net_G, self.encoder):
            if net is not None:
                set_gradient_checkpointing(net, t.gradient_checkpointing)
        self.generator: nn.Module = self.net_G if self.encoder is None or cfg.model.kind != "pix2pixhd" \
            else NeutralFeatures(self.net_G, cfg.model.feat_num)
        # The networks the step calls; DDP wrappers (and torch.compile) replace them.
        self.G: nn.Module = self.net_G
        self.D: nn.Module = self.discriminator
        self.E: nn.Module | None = self.encoder
        self.vgg = VGGLoss(load_vgg19(cfg.loss.vgg_weights)).to(device, memory_format=self.memory_format) \
            if cfg.loss.vgg_loss else None
        g_params = list(self.net_G.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        self.opt_G = make_adam(g_params, cfg, device, t.fused_adam)
        self.opt_D = make_adam(self.discriminator.parameters(), cfg, device, t.fused_adam, lr=t.lr_d or t.lr)
        # G's update runs inside its backward (no step below) unless loss scaling needs every gradient first.
        self._g_in_backward = StepInBackward(self.opt_G) if t.step_in_backward and self.precision != "fp16" \
            else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.pool = ImagePool(t.pool_size, seed=t.seed)
        self._ddp_ids: list[int] | None = None
        self._distributed = self._compiled = False
        self._coarse_frozen = False

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
        if self._distributed:  # DDP fixes the set of parameters it reduces when it wraps a module
            self.G = self._wrap(self.net_G)
            if self._compiled:
                self.G = torch.compile(self.G, mode=self.cfg.train.compile_mode)

    def _wrap(self, net: nn.Module) -> nn.Module:
        return DistributedDataParallel(net, device_ids=self._ddp_ids)

    def wrap_distributed(self, device: torch.device) -> None:
        self._ddp_ids = [device.index] if device.type == "cuda" else None
        self._distributed = True
        if self._g_in_backward is not None:  # DDP averages the gradients after backward: step after it
            self._g_in_backward.remove()
            self._g_in_backward = None
        if self.cfg.train.sync_batchnorm:  # in place: self.generator may hold net_G inside a wrapper
            nn.SyncBatchNorm.convert_sync_batchnorm(self.net_G)
            nn.SyncBatchNorm.convert_sync_batchnorm(self.discriminator)
        self.G, self.D = self._wrap(self.net_G), self._wrap(self.discriminator)
        if self.encoder is not None:
            self.E = self._wrap(self.encoder)

    def compile(self) -> None:
        mode = self.cfg.train.compile_mode
        self.G, self.D = torch.compile(self.G, mode=mode), torch.compile(self.D, mode=mode)
        self._compiled = True

    def train(self, mode: bool = True) -> None:
        for net in (self.net_G, self.discriminator, self.encoder):
            if net is not None:
                net.train(mode)

    def set_lr_factor(self, factor: float) -> None:
        t = self.cfg.train
        for opt, base in ((self.opt_G, t.lr), (self.opt_D, t.lr_d or t.lr)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def learning_rate(self) -> float:
        return float(self.opt_G.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        state = {
            "G": self.net_G.state_dict(),
            "D": self.discriminator.state_dict(),
            "optim": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            "scaler": self.scaler.state_dict(),
        }
        if self.encoder is not None:
            state["E"] = self.encoder.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net_G.load_state_dict(state["G"])
        self.discriminator.load_state_dict(state["D"])
        if self.encoder is not None:
            self.encoder.load_state_dict(state["E"])
        load_optimizer_state(self.opt_G, state["optim"]["G"])
        load_optimizer_state(self.opt_D, state["optim"]["D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

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

    def rank_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state_dict(state["pool"])


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
