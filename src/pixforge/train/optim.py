"""Optimisers of the recipes: the paper's Adam, and restoring its state exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch

from pixforge.config import Config


def make_adam(params: Any, cfg: Config, device: torch.device, fast: bool = True,
              lr: float | None = None) -> torch.optim.Adam:
    """Adam with the config's betas at ``lr`` (default ``train.lr``; SPADE's D runs at ``train.lr_d``)."""
    # Fused Adam updates all parameters in one kernel; the reference's per-parameter loop is `fast=False`.
    kwargs: dict[str, Any] = {"fused": True} if fast else {"foreach": False}
    if fast and device.type not in ("cuda", "cpu"):
        kwargs = {"foreach": True}
    t = cfg.train
    return ChannelsLastAdam(params, lr=t.lr if lr is None else lr, betas=(t.beta1, t.beta2), **kwargs)


class ChannelsLastAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose fused CPU kernel sees channels_last tensors as the dense arrays they are.

    The kernel (torch 2.13, ``FusedAdamKernel.cpp``) makes a contiguous copy of every gradient that is not
    contiguous and then never uses it: for channels_last weights, a full transposing copy per parameter and
    step (pix2pixHD's G: 0.14 s of a 1.5 s CPU step). It walks parameter, gradient and moments in memory order,
    so handing it (N, H, W, C) views of the same memory computes the identical update without that copy.
    Everything else, state and ``state_dict`` included, is torch's Adam.
    """

    def step(self, closure: Any = None, **kwargs: Any) -> Any:
        if not self.defaults.get("fused"):
            return super().step(closure, **kwargs)
        with _nhwc_views(self):
            return super().step(closure, **kwargs)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dim() == 4 and not t.is_contiguous() \
        and t.is_contiguous(memory_format=torch.channels_last)


@contextmanager
def _nhwc_views(opt: torch.optim.Optimizer) -> Iterator[None]:
    """Within: every channels_last parameter with a gradient, the gradient and the parameter's state tensors
    are (N, H, W, C) views of their own memory; after: as they were (state Adam created inside, in the
    parameter's layout)."""
    swapped = []
    for group in opt.param_groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            state = opt.state[p]
            moments = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.shape == p.shape]
            if not all(_is_channels_last(t) for t in (p, p.grad, *(state[k] for k in moments))):
                continue  # torch's own path (e.g. moments restored in another layout: see load_optimizer_state)
            data, grad, saved = p.data, p.grad, dict(state)
            p.grad = None  # a gradient must match its parameter's shape when assigned
            p.data = data.permute(0, 2, 3, 1)
            p.grad = grad.permute(0, 2, 3, 1)
            for key in moments:
                state[key] = saved[key].permute(0, 2, 3, 1)
            swapped.append((p, data, grad, state, saved))
    try:
        yield
    finally:
        for p, data, grad, state, saved in swapped:
            nhwc = p.data.shape
            p.grad = None
            p.data = data
            p.grad = grad
            for key, value in state.items():
                if key in saved:
                    state[key] = saved[key]
                elif isinstance(value, torch.Tensor) and value.shape == nhwc:
                    state[key] = value.permute(0, 3, 1, 2)


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict`` with each per-parameter tensor in its parameter's memory layout.

    ``load_state_dict`` restores moments as they were saved (contiguous), while channels_last parameters
    are NHWC. PyTorch's fused CPU Adam pairs a parameter with its moments element by element in memory
    order, so mismatched layouts silently mix up the moments of different weights on every step after a
    resume (seen with torch 2.13). Matching the layouts keeps a resumed run bit for bit an uninterrupted one.
    """
    opt.load_state_dict(state)
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


class StepInBackward:
    """Runs ``opt``'s update of each parameter as soon as backward has finished that parameter's gradient,
    then frees the gradient, so the gradients of all parameters never exist at once (pix2pixHD's 182 M-parameter
    G: 0.73 GB less at the peak). The arithmetic is ``opt.step()``'s, element for element, and the state is
    ``opt``'s own (its ``state_dict`` and resume are unchanged); the caller skips ``opt.step()``.

    Not for DDP (its all-reduce lands after the hooks) nor fp16 loss scaling (the scaler must see every gradient
    before any step): :meth:`remove` turns it off.
    """

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt
        self._handles = []
        for index, group in enumerate(opt.param_groups):
            for p in group["params"]:
                single = type(opt)([p], **opt.defaults)
                # A frozen parameter gets its hook too: coarse-to-fine training unfreezes parameters later.
                frozen = not p.requires_grad
                p.requires_grad_(True)
                self._handles.append(p.register_post_accumulate_grad_hook(partial(self._step, single, index)))
                p.requires_grad_(not frozen)

    def _step(self, single: torch.optim.Optimizer, index: int, p: torch.Tensor) -> None:
        # Looked up at every step: opt.load_state_dict (a resume) replaces opt's state and group objects, and the
        # schedule sets the rate on opt's groups.
        single.param_groups[0].update({k: v for k, v in self.opt.param_groups[index].items() if k != "params"})
        single.state = self.opt.state
        single.step()
        p.grad = None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
