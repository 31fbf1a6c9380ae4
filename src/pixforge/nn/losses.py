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


def multiscale_adversarial_loss(gan: AdversarialLoss, features: list[list[torch.Tensor]], real: bool, for_d: bool,
                                reduce: str = "sum") -> torch.Tensor:
    """An adversarial loss over a multi-scale D's patch predictions (the last output of each scale).

    ``reduce="sum"`` adds the scales as pix2pixHD does; ``"mean"`` averages them as SPADE does.
    """
    losses = [gan(scale[-1], real, for_d) for scale in features]
    total = torch.stack([loss.float() for loss in losses]).sum()
    return total / len(losses) if reduce == "mean" else total


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD eq. (4): L1 between D's intermediate features on the generated and the real pair.

    Each scale's intermediate layers (all outputs but the prediction) are weighted 4 / their number and the
    scales averaged, as the reference's ``4 / (n_layers_D + 1)`` and ``1 / num_D`` do. The real pair's
    features are targets, not trained through. Multiply by ``lambda_feat``.
    """
    total = torch.zeros((), device=fake[0][0].device)
    for fake_scale, real_scale in zip(fake, real, strict=True):
        layers = len(fake_scale) - 1
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float()) * (4.0 / layers)
    return total / len(fake)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)), summed over the code and the batch as SPADE's ``KLDLoss``."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
