"""Training recipes by name (``model.kind``): each owns its networks, optimisers and one training step.

The loop in ``loop.py`` knows nothing of pix2pix or pix2pixHD; CycleGAN will register another recipe here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from pixforge.config import Config


class Recipe(Protocol):
    generator: nn.Module

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...
    def start_epoch(self, epoch: int) -> None:
        """Called before the first step of every epoch, also when a run resumes mid-epoch: schedules that
        switch by epoch (pix2pixHD trains its global generator from epoch ``niter_fix_global`` on) go here."""
        ...
    def load_pretrained(self, state: dict[str, Any], source: str) -> None:
        """Initialise the networks from another run's checkpoint state (``train.init_from``); not its
        optimiser or step."""
        ...
    def set_lr_factor(self, factor: float) -> None: ...
    def learning_rate(self) -> float: ...
    def wrap_distributed(self, device: torch.device) -> None: ...
    def compile(self) -> None: ...
    def train(self, mode: bool = True) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def rank_state(self) -> dict[str, Any]: ...
    def load_rank_state(self, state: dict[str, Any]) -> None: ...


_RECIPES: dict[str, Callable[..., Recipe]] = {}


def register_recipe(name: str) -> Callable[[Callable[..., Recipe]], Callable[..., Recipe]]:
    def add(factory: Callable[..., Recipe]) -> Callable[..., Recipe]:
        _RECIPES[name] = factory
        return factory

    return add


def create_recipe(cfg: Config, device: torch.device) -> Recipe:
    from pixforge.train import hd, pix2pix  # noqa: F401  (registers "pix2pix", "pix2pixhd", "spade")

    try:
        factory = _RECIPES[cfg.model.kind]
    except KeyError:
        raise ValueError(f"model.kind: unknown '{cfg.model.kind}'; known: {', '.join(_RECIPES)}") from None
    return factory(cfg, device)
