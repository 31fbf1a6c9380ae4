"""Networks by name, as timm does it: ``@register_generator("name")`` then ``create_generator("name", ...)``.

A name may also be a family pattern such as ``unet_<size>``: the factory receives the captured number.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

Factory = Callable[..., nn.Module]


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._exact: dict[str, Factory] = {}
        self._families: list[tuple[re.Pattern[str], str, Factory]] = []

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Register ``name``; ``<number>`` in a name makes it a family, e.g. ``unet_<size>``."""

        def add(factory: Factory) -> Factory:
            if "<" in name:
                pattern = re.sub(r"<(\w+)>", r"(?P<\1>\\d+)", name)
                self._families.append((re.compile(f"^{pattern}$"), name, factory))
            else:
                if name in self._exact:
                    raise ValueError(f"{self.kind} '{name}' is registered twice")
                self._exact[name] = factory
            return factory

        return add

    def create(self, name: str, **kwargs: Any) -> nn.Module:
        factory, fixed = self._lookup(name)
        return factory(**fixed, **kwargs)

    def create_with(self, name: str, available: Mapping[str, Any]) -> nn.Module:
        """Create ``name`` from the entries of ``available`` its factory's signature names, ignoring the rest.

        This is how one config builds any network: the config offers every argument it has (ngf, norm,
        n_blocks_global, label_nc, ...) and each factory takes the ones it declares.
        """
        factory, fixed = self._lookup(name)
        params = inspect.signature(factory).parameters
        return factory(**fixed, **{k: v for k, v in available.items() if k in params and k not in fixed})

    def _lookup(self, name: str) -> tuple[Factory, dict[str, int]]:
        if name in self._exact:
            return self._exact[name], {}
        for pattern, _, factory in self._families:
            match = pattern.match(name)
            if match:
                return factory, {k: int(v) for k, v in match.groupdict().items()}
        raise KeyError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")

    def names(self, pattern: str = "*") -> list[str]:
        names = list(self._exact) + [display for _, display, _ in self._families]
        return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
register_generator = GENERATORS.register
register_discriminator = DISCRIMINATORS.register


def create_generator(name: str, **kwargs: Any) -> nn.Module:
    return GENERATORS.create(name, **kwargs)


def create_discriminator(name: str, **kwargs: Any) -> nn.Module:
    return DISCRIMINATORS.create(name, **kwargs)


def list_generators(pattern: str = "*") -> list[str]:
    return GENERATORS.names(pattern)


def list_discriminators(pattern: str = "*") -> list[str]:
    return DISCRIMINATORS.names(pattern)
