"""Rebuild a trained generator from its checkpoint alone, checking everything it loads.

The architecture is in the checkpoint's config, so no flags are needed. A file that is not what it claims
(another tool's safetensors, a damaged download, a run that diverged to NaN) is refused with one line that
names it, instead of failing deep inside PyTorch or translating to black images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pixforge.config import Config, ConfigError, config_from_dict
from pixforge.nn.build import build_generator
from pixforge.runtime.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, read_metadata, weights_hash


@dataclass
class LoadedGenerator:
    config: Config
    generator: nn.Module
    """In eval mode, on the CPU, in the dtype it was saved in."""
    file: Path
    weights_hash: str


def load_generator(path: str | Path) -> LoadedGenerator:
    """A run directory, its checkpoints/ folder, a training checkpoint or a weights export -> the generator."""
    file = find_checkpoint(path)
    raw_config, state = load_checkpoint(file, only="G")
    try:
        config = config_from_dict(raw_config, str(file))
    except ConfigError as err:
        raise CheckpointError(f"{err} (the config stored in the checkpoint)") from None
    weights = state["G"]
    check_finite(weights, file)
    generator = _build_with(config, weights, file)
    digest = read_metadata(file).get("generator_sha256") or weights_hash(weights)
    return LoadedGenerator(config, generator.eval(), file, digest)


def _build_with(config: Config, weights: dict[str, torch.Tensor], file: Path) -> nn.Module:
    """The architecture built without memory (meta device) and given the loaded tensors: a unet_256 has 54 M
    parameters whose random initialisation would take longer than reading them."""
    try:
        with torch.device("meta"):
            generator = build_generator(config, init=False)
    except (KeyError, ValueError) as err:
        message = err.args[0] if err.args else err
        raise CheckpointError(f"{file}: its config asks for {message}") from None
    load_strict(generator, weights, file, assign=True)
    if any(t.is_meta for t in (*generator.parameters(), *generator.buffers())):  # state outside the state_dict
        generator = build_generator(config, init=False)
        load_strict(generator, weights, file)
    if any(p.dtype in (torch.bfloat16, torch.float16) for p in generator.parameters()):
        generator = generator.float()  # a half-precision weights export computes in whatever precision asked
    return generator


def check_finite(state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Refuse weights holding NaN or infinity (a diverged run): they would translate every image to noise."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: weights '{name}' contain NaN or infinity (training diverged or the "
                                  f"file is damaged); use an earlier checkpoint")


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], source: str | Path, assign: bool = False) -> None:
    """``load_state_dict`` with a one-line error saying what does not fit the architecture in the config."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first '{unexpected[0]}')")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (first '{k}': {tuple(state[k].shape)} in the file, "
                         f"{tuple(expected[k].shape)} in the architecture)")
        raise CheckpointError(f"{source}: weights do not fit the architecture its config describes: "
                              f"{'; '.join(parts)}")
    net.load_state_dict(state, assign=assign)
