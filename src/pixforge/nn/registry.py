"""Networks by name, as timm does it: ``@register_generator("name")`` then ``create_generator("name", ...)``.

A name may also be a family pattern such as ``unet_<size>``: the factory receives the captured number
(``pixforge.registry``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from pixforge.registry import Registry

Factory = Callable[..., nn.Module]


class NetworkRegistry(Registry[Factory]):
    def create(self, name: str, **kwargs: Any) -> nn.Module:
        factory, fixed = self.lookup(name)
        return factory(**fixed, **kwargs)

    def create_with(self, name: str, available: Mapping[str, Any]) -> nn.Module:
        """Create ``name`` from the entries of ``available`` its factory's signature names, ignoring the rest.

        This is how one config builds any network: the config offers every argument it has (ngf, norm,
        n_blocks_global, label_nc, ...) and each factory takes the ones it declares.
        """
        factory, fixed = self.lookup(name)
        params = inspect.signature(factory).parameters
        return factory(**fixed, **{k: v for k, v in available.items() if k in params and k not in fixed})


GENERATORS = NetworkRegistry("generator")
DISCRIMINATORS = NetworkRegistry("discriminator")
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
