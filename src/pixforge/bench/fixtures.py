"""What the speed benchmarks run: a facades-preset unet_256 (ngf 64) with the reference's random
initialisation. Speed does not depend on training, and a fixed seed makes every run time the same weights."""

from __future__ import annotations

from pathlib import Path


def random_unet256(folder: Path, discriminator: bool = False) -> Path:
    """A checkpoint in ``folder`` holding G (and D, as a training checkpoint would) of the facades preset."""
    import torch

    from pixforge.config import load_config
    from pixforge.nn.build import build_discriminator, build_generator
    from pixforge.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = load_config("facades")
    state = {"G": build_generator(cfg).state_dict()}
    if discriminator:
        state["D"] = build_discriminator(cfg).state_dict()
    return save_checkpoint(folder / "bench.safetensors", cfg.to_dict(), state)
