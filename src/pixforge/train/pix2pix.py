"""The pix2pix recipe (Isola et al. 2017): a conditional GAN plus an L1 term, D step then G step.

    L_D = ½ [ GAN(D(x, G(x)), fake) + GAN(D(x, y), real) ]  (+ gradient penalty for wgangp)
    L_G = GAN(D(x, G(x)), real) + λ_L1 · |y − G(x)|₁
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pixforge.config import Config
from pixforge.nn import adversarial_loss, gradient_penalty, l1_loss
from pixforge.nn.build import build_discriminator, build_generator, set_gradient_checkpointing
from pixforge.runtime.device import autocast, resolve_channels_last, resolve_precision
from pixforge.train.image_pool import ImagePool
from pixforge.train.models import register_recipe
from pixforge.train.optim import load_optimizer_state, make_adam


@register_recipe("pix2pix")
class Pix2Pix:
    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.precision = resolve_precision(cfg.train.precision, device)
        channels_last = resolve_channels_last(cfg.train.channels_last, self.precision)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = build_generator(cfg).to(device, memory_format=self.memory_format)
        set_gradient_checkpointing(self.generator, cfg.train.gradient_checkpointing)
        self.discriminator = build_discriminator(cfg).to(device, memory_format=self.memory_format)
        # The networks the step calls; DDP wrappers replace them under torchrun.
        self.G: nn.Module = self.generator
        self.D: nn.Module = self.discriminator
        self.opt_G = make_adam(self.generator.parameters(), cfg, device, cfg.train.fused_adam)
        self.opt_D = make_adam(self.discriminator.parameters(), cfg, device, cfg.train.fused_adam)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.gan = adversarial_loss(cfg.loss.gan_mode)
        self.pool = ImagePool(cfg.train.pool_size, seed=cfg.train.seed)

    def wrap_distributed(self, device: torch.device) -> None:
        ids = [device.index] if device.type == "cuda" else None
        if self.cfg.train.sync_batchnorm:
            self.generator = nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)
            self.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(self.discriminator)
        self.G = DistributedDataParallel(self.generator, device_ids=ids)
        self.D = DistributedDataParallel(self.discriminator, device_ids=ids)

    def compile(self) -> None:
        """Compile the networks the step calls (after any DDP wrapping, as DDP's docs advise)."""
        mode = self.cfg.train.compile_mode
        self.G = torch.compile(self.G, mode=mode)
        self.D = torch.compile(self.D, mode=mode)

    def train(self, mode: bool = True) -> None:
        self.generator.train(mode)
        self.discriminator.train(mode)

    def set_lr_factor(self, factor: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = self.cfg.train.lr * factor

    def learning_rate(self) -> float:
        return float(self.opt_G.param_groups[0]["lr"])

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached losses (no host sync here)."""
        to = {"device": self.device, "memory_format": self.memory_format, "non_blocking": True}
        real_in, real_out = batch["input"].to(**to), batch["target"].to(**to)
        precision, lambda_l1 = self.precision, self.cfg.loss.lambda_l1

        with autocast(precision, self.device):
            fake_out = self.G(real_in)

        # Discriminator: real pairs up, generated pairs (G frozen via detach) down.
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(precision, self.device):
            fake_pair = self.pool.query(torch.cat([real_in, fake_out], 1).detach())
            real_pair = torch.cat([real_in, real_out], 1)
            d_fake = self.gan(self.D(fake_pair), False, True)
            d_real = self.gan(self.D(real_pair), True, True)
            loss_d = 0.5 * (d_fake + d_real)
            if self.cfg.loss.gan_mode == "wgangp":
                gp = gradient_penalty(self.discriminator, real_pair, fake_pair, self.cfg.loss.lambda_gp)
                loss_d = loss_d + gp
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_D)

        # Generator: fool D (called unwrapped: its weights are frozen, nothing to all-reduce) + L1.
        self.opt_G.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)
        with autocast(precision, self.device):
            g_gan = self.gan(self.discriminator(torch.cat([real_in, fake_out], 1)), True, False)
        g_l1 = l1_loss(fake_out.float(), real_out.float()) * lambda_l1
        self.scaler.scale(g_gan + g_l1).backward()
        self.discriminator.requires_grad_(True)
        self.scaler.step(self.opt_G)
        self.scaler.update()

        losses = {"D_real": d_real, "D_fake": d_fake, "G_GAN": g_gan, "G_L1": g_l1}
        if self.cfg.loss.gan_mode == "wgangp":
            losses["D_GP"] = gp
        return {k: v.detach().float() for k, v in losses.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.generator.state_dict(),
            "D": self.discriminator.state_dict(),
            "optim": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["G"])
        self.discriminator.load_state_dict(state["D"])
        load_optimizer_state(self.opt_G, state["optim"]["G"])
        load_optimizer_state(self.opt_D, state["optim"]["D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def rank_state(self) -> dict[str, Any]:
        """What differs between torchrun ranks (each pools its own fakes); the loop saves every rank's."""
        return {"pool": self.pool.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state_dict(state["pool"])
