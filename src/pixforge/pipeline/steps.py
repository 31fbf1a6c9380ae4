"""Steps between pipeline stages, by name: ``resize``, ``snap``, ``relabel``, ``grayscale``, ``python``.

In a pipeline file a step is ``{name: {field: value, ...}}``, or ``{name: value}`` for its main field, or a
bare ``name``::

    - resize: 256                          # or {size: [height, width]} or {scale: 0.5}
    - snap: facades                        # colours -> the nearest palette colour (the class map, drawn)
    - relabel: {map: {window: balcony}}    # change classes of a label map (palette from the stage before)
    - grayscale                            # or {channels: 3}: grey, kept as three equal channels
    - python: {call: "my_edits:brighten", args: {amount: 0.2}}   # or "edits.py:brighten" beside the YAML

Binding a step to the :class:`ImageKind` it receives checks it (before any image is processed) and gives the
function that runs it and the kind it hands on. Steps work on HxWxC uint8/uint16 arrays.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch.nn import functional as F

from pixforge.data.image_io import convert_channels, drop_alpha
from pixforge.data.palette import Palette, get_palette
from pixforge.pipeline.kinds import ImageKind, PipelineError
from pixforge.registry import Registry

Apply = Callable[[np.ndarray], np.ndarray]


class Step(BaseModel):
    """A step's arguments (validated from the YAML) and how it binds to what it receives."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    primary: ClassVar[str | None] = None
    """The field a bare value sets: ``resize: 256`` means ``resize: {size: 256}``."""

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        raise NotImplementedError


STEPS: Registry[type[Step]] = Registry("step")


def register_step(name: str) -> Callable[[type[Step]], type[Step]]:
    return STEPS.register(name)


def list_steps() -> list[str]:
    return STEPS.names()


def parse_step(raw: Any) -> tuple[str, Step]:
    """``"grayscale"``, ``{"resize": 256}`` or ``{"resize": {"size": 256}}`` -> (name, validated step)."""
    if isinstance(raw, str):
        name, args = raw, {}
    elif isinstance(raw, dict) and len(raw) == 1:
        name, args = next(iter(raw.items()))
    else:
        raise PipelineError(f"expected a step name or {{name: arguments}}, got {raw!r}")
    if not isinstance(name, str) or name not in STEPS:
        raise PipelineError(f"unknown step '{name}'; known: {', '.join(list_steps())}")
    cls = STEPS.get(name)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        if cls.primary is None:
            raise PipelineError(f"step '{name}' takes a mapping of arguments, got {args!r}")
        args = {cls.primary: args}
    try:
        return name, cls.model_validate(args)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or name
        raise PipelineError(f"step '{name}' field '{field}': {first['msg']}") from None


def _palette_for(step: str, given: str | None, kind: ImageKind) -> Palette:
    name = given or kind.palette
    if name is None:
        raise PipelineError(f"step '{step}': needs a palette, and what it receives ({kind.values()}) has none; "
                            f"give palette: NAME")
    try:
        return get_palette(name)
    except KeyError as err:
        raise PipelineError(f"step '{step}' field 'palette': {err.args[0]}") from None


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """Label-map steps work on 8-bit colours (palettes are 8-bit); 16-bit inputs are scaled down."""
    return (image // 257).astype(np.uint8) if image.dtype == np.uint16 else image


@register_step("resize")
class Resize(Step):
    """Resize to ``size`` (an int: a square; or [height, width]) or by ``scale``.

    ``resample: auto`` keeps label maps exact (nearest neighbour for a snapped map) and smooths everything
    else (bicubic with antialiasing, as Pillow's resize does when shrinking)."""

    primary: ClassVar[str | None] = "size"
    size: int | tuple[int, int] | None = Field(None)
    scale: float | None = Field(None, gt=0)
    resample: Literal["auto", "nearest", "bilinear", "bicubic"] = "auto"

    @model_validator(mode="after")
    def _one_of(self) -> Resize:
        if (self.size is None) == (self.scale is None):
            raise ValueError("give exactly one of size or scale")
        sizes = (self.size,) if isinstance(self.size, int) else (self.size or ())
        if any(s <= 0 for s in sizes):
            raise ValueError(f"sizes must be positive, got {self.size}")
        return self

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        mode = self.resample
        if mode == "auto":
            mode = "nearest" if kind.exact else "bicubic"
        target = self._target(kind.size)

        def apply(image: np.ndarray) -> np.ndarray:
            return resize_image(image, target or self._target(image.shape[:2]), mode)  # type: ignore[arg-type]

        return apply, kind.with_(size=target, exact=kind.exact and mode == "nearest")

    def _target(self, current: tuple[int, int] | None) -> tuple[int, int] | None:
        if isinstance(self.size, int):
            return self.size, self.size
        if self.size is not None:
            return self.size[0], self.size[1]
        if current is None:
            return None
        assert self.scale is not None
        return max(1, round(current[0] * self.scale)), max(1, round(current[1] * self.scale))


def resize_image(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """HxWxC uint8/uint16 -> size (height, width), same dtype; ``nearest`` copies pixels, never blends."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    if mode == "nearest":
        rows = (np.arange(h) * image.shape[0] // h).clip(0, image.shape[0] - 1)
        cols = (np.arange(w) * image.shape[1] // w).clip(0, image.shape[1] - 1)
        return image[rows][:, cols]
    top = 65535.0 if image.dtype == np.uint16 else 255.0
    x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None])
    y = F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=True)
    return y[0].permute(1, 2, 0).round().clamp(0, top).numpy().astype(image.dtype)


@register_step("snap")
class Snap(Step):
    """Snap each pixel to its palette class and draw the class map back in exact palette colours."""

    primary: ClassVar[str | None] = "palette"
    palette: str | None = None

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        palette = _palette_for("snap", self.palette, kind)
        if kind.channels == 1:
            raise PipelineError("step 'snap' input channels: expects 3 (a colour label map), receives 1")

        def apply(image: np.ndarray) -> np.ndarray:
            return palette.render(palette.snap(_as_uint8(convert_channels(drop_alpha(image), 3))))

        return apply, kind.with_(channels=3, palette=palette.name, exact=True, known=True)


@register_step("relabel")
class Relabel(Step):
    """Turn classes into others: ``map: {window: balcony, door: window}`` (all at once, not in sequence)."""

    primary: ClassVar[str | None] = "map"
    map: dict[str, str]
    palette: str | None = None

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        palette = _palette_for("relabel", self.palette, kind)
        table = np.arange(len(palette), dtype=np.uint8)
        for source, target in self.map.items():
            try:
                table[palette.index(source)] = palette.index(target)
            except KeyError as err:
                raise PipelineError(f"step 'relabel' field 'map': {err.args[0]}") from None

        def apply(image: np.ndarray) -> np.ndarray:
            return palette.render(table[palette.snap(_as_uint8(convert_channels(drop_alpha(image), 3)))])

        return apply, kind.with_(channels=3, palette=palette.name, exact=True, known=True)


@register_step("grayscale")
class Grayscale(Step):
    """ITU-R 601 luma; ``channels: 3`` keeps it as three equal channels for a model that wants RGB."""

    primary: ClassVar[str | None] = "channels"
    channels: Literal[1, 3] = 1

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        def apply(image: np.ndarray) -> np.ndarray:
            grey = convert_channels(drop_alpha(image), 1)
            return convert_channels(grey, 3) if self.channels == 3 else grey

        return apply, kind.with_(channels=self.channels, palette=None, exact=False, known=True)


class Gives(BaseModel):
    """What a ``python`` step hands on, where it changes it (unset fields: as received)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: Literal[1, 3] | None = None
    palette: str | None = None
    size: int | tuple[int, int] | None = None


@register_step("python")
class PythonStep(Step):
    """A function of yours: ``call: "package.module:function"``, or ``"file.py:function"`` (a path relative to
    the pipeline file). It receives an HxWxC uint8 (or uint16) array and returns one; ``args`` are passed
    as keyword arguments, and ``gives`` declares what it hands on if it changes channels, palette or size.
    A pipeline file that names Python code runs that code: treat such a file like a script."""

    primary: ClassVar[str | None] = "call"
    call: str
    args: dict[str, Any] = Field(default_factory=dict)
    gives: Gives = Gives()

    def bind(self, kind: ImageKind, base_dir: Path) -> tuple[Apply, ImageKind]:
        fn = import_callable(self.call, base_dir)
        try:
            inspect.signature(fn).bind(np.zeros((1, 1, 3), np.uint8), **self.args)
        except TypeError as err:
            raise PipelineError(f"step 'python' field 'args': {self.call} cannot take them ({err})") from None
        except ValueError:
            pass  # builtins without a signature: found out when it runs
        size = self.gives.size
        out = kind.with_(
            channels=self.gives.channels or kind.channels, palette=self.gives.palette or kind.palette,
            exact=False, known=kind.known or self.gives.channels is not None,
            size=(size, size) if isinstance(size, int) else (tuple(size) if size else kind.size))
        if self.gives.palette is not None:
            _palette_for("python", self.gives.palette, out)

        def apply(image: np.ndarray) -> np.ndarray:
            result = fn(image, **self.args)
            if not isinstance(result, np.ndarray) or result.dtype not in (np.uint8, np.uint16) \
                    or result.ndim not in (2, 3) or (result.ndim == 3 and result.shape[2] not in (1, 3)):
                got = f"{result.dtype} array of shape {result.shape}" if isinstance(result, np.ndarray) \
                    else type(result).__name__
                raise PipelineError(f"step 'python' ({self.call}): returned a {got}; expected an HxW or HxWxC "
                                    f"(C = 1 or 3) uint8/uint16 array")
            result = result[:, :, None] if result.ndim == 2 else result
            if out.channels is not None and result.shape[2] != out.channels:
                raise PipelineError(f"step 'python' ({self.call}) output channels: declared {out.channels}, "
                                    f"returned {result.shape[2]}; set gives: {{channels: N}}")
            return result

        return apply, out


def import_callable(spec: str, base_dir: Path) -> Callable[..., Any]:
    """``package.module:function`` (importable) or ``path/file.py:function`` (relative to ``base_dir``)."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise PipelineError(f"step 'python' field 'call': expected 'module:function' or 'file.py:function', "
                            f"got {spec!r}")
    try:
        if where.endswith(".py"):
            path = (base_dir / where).resolve()
            if not path.is_file():
                raise PipelineError(f"step 'python' field 'call': {path}: no such file")
            module_name = f"pixforge_pipeline_user.{path.stem}_{abs(hash(str(path)))}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except PipelineError:
        raise
    except Exception as err:  # an import runs the user's code: anything may come out of it
        raise PipelineError(f"step 'python' field 'call': cannot import {where!r} "
                            f"({type(err).__name__}: {err})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise PipelineError(f"step 'python' field 'call': {where!r} has no function {attr!r}")
    return fn
