"""Adversarial losses by name, the WGAN-GP gradient penalty, and the L1 reconstruction term."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# (prediction, target_is_real, for_discriminator) -> scalar loss
AdversarialLoss = Callable[[torch.Tensor, bool, bool], torch.Tensor]


def _vanilla(pred: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
    # BCE on logits: the sigmoid lives inside the loss for numerical stability (paper's log D).
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.binary_cross_entropy_with_logits(pred, target)


def _lsgan(pred: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.mse_loss(pred, target)


def _hinge(pred: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
    if not for_d:  # the generator simply raises D's score (Lim & Ye 2017)
        return -pred.mean()
    return F.relu(1 - pred).mean() if real else F.relu(1 + pred).mean()


def _wgan(pred: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
    return -pred.mean() if real else pred.mean()


ADVERSARIAL_LOSSES: dict[str, AdversarialLoss] = {
    "vanilla": _vanilla,
    "lsgan": _lsgan,
    "hinge": _hinge,
    "wgangp": _wgan,
}


def adversarial_loss(name: str) -> AdversarialLoss:
    try:
        return ADVERSARIAL_LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown gan_mode '{name}'; known: {', '.join(ADVERSARIAL_LOSSES)}") from None


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): push ||grad D|| to 1 on random real/fake interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    score = discriminator(mixed)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    # The epsilon keeps the norm differentiable where a gradient is exactly zero.
    norms = (grad.flatten(1) + 1e-16).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def l1_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(fake, target)
