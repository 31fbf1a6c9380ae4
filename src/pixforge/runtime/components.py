"""The named parts of a model and what each is for, as diffusers' ``model_index.json`` names a pipeline's parts.

A checkpoint's top-level state holds one entry per network (``G``, ``D``; CycleGAN's ``G_A``, ``G_B``, ``D_A``,
``D_B``; an encoder ``E``; CUT's projection head ``F``) beside ``optim``, ``progress`` and the like. Its metadata
``components`` says which of those entries are networks and what each does::

    {"G_A": {"role": "generator", "direction": "AtoB", "input_nc": 3, "output_nc": 3, "sha256": "..."},
     "D_A": {"role": "discriminator"}, ...}

Loading, export, serving and provenance pick a generator by name or by direction from this table, never by
assuming there is one ``G``. Every generator carries its own weights hash: the provenance mark of an image
names the generator that made it. Files written before the table existed are read as pix2pix's layout:
``G`` the generator (AtoB), ``D`` the discriminator, ``E`` the encoder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

Role = Literal["generator", "discriminator", "encoder", "head"]
DIRECTIONS = ("AtoB", "BtoA")

LEGACY_ROLES: dict[str, Role] = {"G": "generator", "D": "discriminator", "E": "encoder"}
"""What the parts of a checkpoint without a ``components`` table are."""


class ComponentError(ValueError):
    """A model holds no component of the name or direction asked for; the message lists what it has."""


@dataclass(frozen=True)
class Component:
    role: Role
    direction: str | None = None
    """A generator's mapping between the data's two sides: ``AtoB`` (input -> target, or domain A -> B) or
    ``BtoA``. ``None`` for networks that map no images (discriminators, heads) and for generators that take
    no image (class-conditional)."""
    input_nc: int | None = None
    """Image channels a generator takes and gives; ``None``: the config's ``data.input_nc``/``output_nc``."""
    output_nc: int | None = None
    sha256: str | None = None
    """A generator's weights hash (``runtime.checkpoint.weights_hash``), filled in when the file is written."""

    def __post_init__(self) -> None:
        if self.role not in get_args(Role):
            raise ValueError(f"component role '{self.role}': expected one of {', '.join(get_args(Role))}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"component direction '{self.direction}': expected AtoB or BtoA")

    def with_hash(self, sha256: str) -> Component:
        return replace(self, sha256=sha256)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Component:
        known = {k: data[k] for k in ("role", "direction", "input_nc", "output_nc", "sha256") if k in data}
        return cls(**known)


Components = dict[str, Component]


def encode_components(components: Components) -> str:
    return json.dumps({name: c.to_json() for name, c in components.items()}, sort_keys=False)


def decode_components(text: str | None, parts: list[str], legacy_hash: str | None = None) -> Components:
    """The table of a file's metadata, or for an older file the pix2pix layout its ``parts`` imply."""
    if text:
        raw = json.loads(text)
        return {name: Component.from_json(entry) for name, entry in raw.items()}
    found: Components = {}
    for name in parts:
        if name in LEGACY_ROLES:
            is_g = name == "G"
            found[name] = Component(LEGACY_ROLES[name], direction="AtoB" if is_g else None,
                                    sha256=legacy_hash if is_g else None)
    return found


def generators(components: Components) -> Components:
    return {name: c for name, c in components.items() if c.role == "generator"}


def pick_generator(components: Components, source: str, name: str | None = None,
                   direction: str | None = None) -> str:
    """The name of the generator asked for: by ``name``, else by ``direction`` (default: the model's
    AtoB generator, or its only one). One-line errors name the file and list what it holds."""
    gens = generators(components)
    if not gens:
        raise ComponentError(f"{source}: holds no generator (its parts: {', '.join(components) or 'none'})")
    listing = ", ".join(f"{n} ({c.direction or 'no direction'})" for n, c in gens.items())
    if name is not None:
        if name not in gens:
            raise ComponentError(f"{source}: has no generator '{name}'; it holds {listing}")
        if direction is not None and gens[name].direction != direction:
            raise ComponentError(f"{source}: generator '{name}' maps {gens[name].direction}, not {direction}")
        return name
    if direction is not None:
        if direction not in DIRECTIONS:
            raise ComponentError(f"direction '{direction}': expected AtoB or BtoA")
        matches = [n for n, c in gens.items() if c.direction == direction]
        if not matches:
            raise ComponentError(f"{source}: has no {direction} generator (it holds {listing}); "
                                 f"this model translates one way only")
        return matches[0]
    forward = [n for n, c in gens.items() if c.direction == "AtoB"]
    return forward[0] if forward else next(iter(gens))
