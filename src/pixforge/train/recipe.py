"""What every training recipe shares: named networks, named optimisers, and the bookkeeping around them.

A recipe (``pix2pix``, ``pix2pixhd``, ``spade``, ``cyclegan``, ...) builds its networks with ``add_network``
(each a named component with a role, as the checkpoint records it) and its optimisers with ``add_optimizer``,
then says what is its own: ``train_step``, the losses it reports (``loss_names``), the rows of its preview
grid (``preview_rows``) and its validation (``validate``). DDP wrapping, ``torch.compile``, the learning-rate
factor, checkpoint state and per-rank state are written here once, so the loop in ``loop.py`` drives any
recipe without knowing which it is.

The step calls ``self.wrapped[name]`` (the network behind DDP and compile wrappers where they apply) and
reaches the plain module as ``self.networks[name]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pixforge.config import Config
from pixforge.nn.modes import evaluating
from pixforge.registry import Registry
from pixforge.runtime.components import Component, Components
from pixforge.runtime.device import resolve_channels_last, resolve_precision
from pixforge.train.image_pool import ImagePool
from pixforge.train.optim import load_optimizer_state, make_adam
from pixforge.train.pretrained import load_matching


class Recipe:
    loss_names: tuple[str, ...] = ()
    """The losses ``train_step`` returns, in the order progress lines and reports show them."""
    preview_generator: str = "G"
    """The generator whose weights hash marks the preview grids."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.precision = resolve_precision(cfg.train.precision, device)
        channels_last = resolve_channels_last(cfg.train.channels_last, self.precision, device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.networks: dict[str, nn.Module] = {}
        """The plain modules, by component name: what checkpoints hold."""
        self.components: Components = {}
        self.wrapped: dict[str, nn.Module] = {}
        """What the step calls: each network, or its DDP / compiled wrapper."""
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._base_lr: dict[str, float] = {}
        self.pools: dict[str, ImagePool] = {}
        """Image pools of past fakes by name; each rank keeps its own (``rank_state``)."""
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.distributed = False
        self._ddp_ids: list[int] | None = None
        self._compiled = False

    # -- building --------------------------------------------------------------------------------------
    def add_network(self, name: str, net: nn.Module, component: Component) -> nn.Module:
        """Register ``net`` as component ``name``, moved to the device in the recipe's memory format."""
        if name in self.networks:
            raise ValueError(f"network '{name}' is added twice")
        net = net.to(self.device, memory_format=self.memory_format)
        self.networks[name] = self.wrapped[name] = net
        self.components[name] = component
        return net

    def add_optimizer(self, name: str, params: Iterable[nn.Parameter], lr: float | None = None
                      ) -> torch.optim.Optimizer:
        """Adam with the config's betas (``train.fused_adam``); ``lr`` defaults to ``train.lr``."""
        base = self.cfg.train.lr if lr is None else lr
        opt = make_adam(params, self.cfg, self.device, self.cfg.train.fused_adam, lr=base)
        self.optimizers[name], self._base_lr[name] = opt, base
        return opt

    def add_pool(self, name: str) -> ImagePool:
        pool = ImagePool(self.cfg.train.pool_size, seed=self.cfg.train.seed + len(self.pools))
        self.pools[name] = pool
        return pool

    # -- what each recipe says -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch``; returns the losses detached, as float tensors (no host sync)."""
        raise NotImplementedError

    def preview_rows(self, dataset: Any, count: int) -> list[list[np.ndarray]]:
        """Rows of HxWxC uint8 images for a preview grid from the first ``count`` items of ``dataset``."""
        raise NotImplementedError

    def validate(self, dataset: Any) -> dict[str, float]:
        """Validation metrics on ``dataset`` (the run's validation split), logged under their names."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called before the first step of every epoch, also when a run resumes mid-epoch: schedules that
        switch by epoch (pix2pixHD trains its global generator from epoch ``niter_fix_global`` on) go here."""
        del epoch

    # -- the same for every recipe ---------------------------------------------------------------------
    def wrap_distributed(self, device: torch.device) -> None:
        """DDP around every network that has trainable parameters (after ``torch.manual_seed``: identical
        initial weights on every rank, which DDP checks)."""
        self._ddp_ids = [device.index] if device.type == "cuda" else None
        self.distributed = True
        for name, net in self.networks.items():
            if self.cfg.train.sync_batchnorm:  # in place: wrappers may hold the module
                nn.SyncBatchNorm.convert_sync_batchnorm(net)
            if any(p.requires_grad for p in net.parameters()):
                self.wrapped[name] = DistributedDataParallel(net, device_ids=self._ddp_ids)

    def rewrap(self, name: str) -> None:
        """Wrap ``name`` anew after its set of trainable parameters changed (DDP fixes it when it wraps)."""
        if self.distributed:
            self.wrapped[name] = DistributedDataParallel(self.networks[name], device_ids=self._ddp_ids)
        if self._compiled:
            self.wrapped[name] = torch.compile(self.wrapped[name], mode=self.cfg.train.compile_mode)

    def compile(self) -> None:
        """Compile what the step calls (after any DDP wrapping, as DDP's docs advise)."""
        for name in self.compiled_networks():
            self.wrapped[name] = torch.compile(self.wrapped[name], mode=self.cfg.train.compile_mode)
        self._compiled = True

    def compiled_networks(self) -> Sequence[str]:
        return [n for n, c in self.components.items() if c.role in ("generator", "discriminator")]

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Every network in eval mode for the block (previews, validation), then back as they were."""
        with contextlib.ExitStack() as stack:
            for net in self.networks.values():
                stack.enter_context(evaluating(net))
            yield

    def set_lr_factor(self, factor: float) -> None:
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self._base_lr[name] * factor

    def learning_rate(self) -> float:
        first = next(iter(self.optimizers.values()))
        return float(first.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.networks.items()}
        state["optim"] = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            load_optimizer_state(opt, state["optim"][name])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def load_pretrained(self, state: dict[str, Any], source: str) -> None:
        """``train.init_from``: every network the other run also has starts from its weights (not its
        optimiser or step); recipes whose networks can grow (pix2pixHD) load partially."""
        found = [name for name in self.networks if name in state]
        if not found:
            raise ValueError(f"{source}: holds none of this run's networks ({', '.join(self.networks)})")
        for name in found:
            load_matching(self.networks[name], state[name], source, self.components[name].role)

    def rank_state(self) -> dict[str, Any]:
        """What differs between torchrun ranks (each pools its own fakes); the loop saves every rank's."""
        if list(self.pools) == ["pool"]:  # the layout of checkpoints from before named pools
            return {"pool": self.pools["pool"].state_dict()}
        return {"pools": {name: pool.state_dict() for name, pool in self.pools.items()}}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        saved = state["pools"] if "pools" in state else {"pool": state["pool"]}  # a recipe may have none
        for name, pool in self.pools.items():
            pool.load_state_dict(saved[name])


RECIPES: Registry[Callable[..., Recipe]] = Registry("model.kind")


def register_recipe(name: str) -> Callable[[Any], Any]:
    return RECIPES.register(name)


def create_recipe(cfg: Config, device: torch.device) -> Recipe:
    from pixforge.train import cgan, cut, cyclegan, hd, pix2pix  # noqa: F401  (each registers its recipes)

    return RECIPES.get(cfg.model.kind)(cfg, device)
