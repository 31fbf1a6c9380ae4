"""Things by name, as timm registers models: ``@REGISTRY.register("name")``, then ``REGISTRY.get("name")``.

One class serves the networks (``nn.registry``), the training recipes (``train.recipe``) and the pipeline
steps (``pipeline.steps``). A name may be a family pattern such as ``unet_<size>``: its factory receives the
captured number. Registering a name twice is an error, so two modules can never silently shadow each other.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T", bound=Callable[..., Any])


class UnknownNameError(KeyError):
    """A name no one registered; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown name"


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._exact: dict[str, T] = {}
        self._families: list[tuple[re.Pattern[str], str, T]] = []

    def register(self, name: str) -> Callable[[T], T]:
        """Register ``name``; ``<number>`` in a name makes it a family, e.g. ``unet_<size>``."""

        def add(factory: T) -> T:
            if name in self._exact or any(display == name for _, display, _ in self._families):
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            if "<" in name:
                pattern = re.sub(r"<(\w+)>", r"(?P<\1>\\d+)", name)
                self._families.append((re.compile(f"^{pattern}$"), name, factory))
            else:
                self._exact[name] = factory
            return factory

        return add

    def lookup(self, name: str) -> tuple[T, dict[str, int]]:
        """The factory for ``name`` and the numbers a family pattern captured from it."""
        if name in self._exact:
            return self._exact[name], {}
        for pattern, _, factory in self._families:
            match = pattern.match(name)
            if match:
                return factory, {k: int(v) for k, v in match.groupdict().items()}
        raise UnknownNameError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        factory, fixed = self.lookup(name)
        return functools.partial(factory, **fixed) if fixed else factory  # type: ignore[return-value]

    def __contains__(self, name: str) -> bool:
        try:
            self.lookup(name)
        except UnknownNameError:
            return False
        return True

    def names(self, pattern: str = "*") -> list[str]:
        names = list(self._exact) + [display for _, display, _ in self._families]
        return sorted(n for n in names if fnmatch.fnmatch(n, pattern))
