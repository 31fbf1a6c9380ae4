"""Rebuild a trained generator from its checkpoint alone, checking everything it loads.

The architecture is in the checkpoint's config and its components table, so no flags are needed; a model with
several generators (CycleGAN's ``G_A`` and ``G_B``) gives the one asked for by name or direction. A file that
is not what it claims (another tool's safetensors, a damaged download, a run that diverged to NaN) is
refused with one line that names it, instead of failing deep inside PyTorch or translating to black images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from pixforge.config import Config, ConfigError, config_from_dict
from pixforge.nn.build import build_generator
from pixforge.runtime.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    read_components,
    read_metadata,
    weights_hash,
)
from pixforge.runtime.components import Component, ComponentError, Components, pick_generator


@dataclass
class LoadedGenerator:
    config: Config
    """The model's config as this generator sees it: for a generator mapping B to A, ``data.input_nc`` and
    ``output_nc`` (and the palettes) are swapped, so the input side is what it takes."""
    generator: nn.Module
    """In eval mode, on the CPU, in the dtype it was saved in."""
    file: Path
    weights_hash: str
    name: str = "G"
    """The component's name in the checkpoint (``G``, ``G_A``, ``G_B``, ...)."""
    direction: str | None = "AtoB"
    components: Components = field(default_factory=dict)
    """Every component the file holds, for callers that list or pick another."""


def load_generator(path: str | Path, direction: str | None = None, name: str | None = None) -> LoadedGenerator:
    """A run directory, its checkpoints/ folder, a training checkpoint or a weights export -> a generator:
    the one named, else the one of ``direction`` (default: AtoB, or the model's only generator)."""
    file = find_checkpoint(path)
    components = read_components(file)
    try:
        chosen = pick_generator(components, str(file), name=name, direction=direction)
    except ComponentError as err:
        raise CheckpointError(str(err)) from None
    component = components[chosen]
    raw_config, state = load_checkpoint(file, only=chosen)
    try:
        config = config_from_dict(raw_config, str(file))
    except ConfigError as err:
        raise CheckpointError(f"{err} (the config stored in the checkpoint)") from None
    weights = state[chosen]
    check_finite(weights, file)
    generator = _build_with(config, component, weights, file)
    digest = component.sha256 or read_metadata(file).get("generator_sha256") or weights_hash(weights)
    return LoadedGenerator(oriented_config(config, component.direction), generator.eval(), file, digest, chosen,
                           component.direction, components)


def oriented_config(config: Config, direction: str | None) -> Config:
    """``config`` seen from a generator of ``direction``: BtoA swaps the two sides' channels and palettes, and
    reverses ``data.direction`` (the side of a pair it reads is the other one)."""
    if direction != "BtoA":
        return config
    d = config.data
    return config.model_copy(update={"data": d.model_copy(update={
        "input_nc": d.output_nc, "output_nc": d.input_nc,
        "input_palette": d.output_palette, "output_palette": d.input_palette,
        "direction": "AtoB" if d.direction == "BtoA" else "BtoA"})})


def _build_with(config: Config, component: Component, weights: dict[str, torch.Tensor], file: Path) -> nn.Module:
    """The architecture built without memory (meta device) and given the loaded tensors: a unet_256 has 54 M
    parameters whose random initialisation would take longer than reading them."""
    channels = {"input_nc": component.input_nc, "output_nc": component.output_nc}
    try:
        with torch.device("meta"):
            generator = build_generator(config, init=False, **channels)
    except (KeyError, ValueError) as err:
        message = err.args[0] if err.args else err
        raise CheckpointError(f"{file}: its config asks for {message}") from None
    load_strict(generator, weights, file, assign=True)
    if any(t.is_meta for t in (*generator.parameters(), *generator.buffers())):  # state outside the state_dict
        generator = build_generator(config, init=False, **channels)
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
