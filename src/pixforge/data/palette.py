"""Colour palettes of label maps: class names, their colours, and snapping a drawn or JPEG'd map to classes.

Label maps are often stored as colour images (the facades set, a drawing in the browser). A network that
wants class indices (one-hot input, per-class metrics) has to snap each pixel to the nearest palette colour;
that is exact inside regions and lossy only where JPEG blurred a border between two colours.

    facades = get_palette("facades")
    classes = facades.snap(label_rgb)        # HxW uint8 class indices
    drawing = facades.render(classes)        # back to HxWx3 uint8 colours
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_CHUNK = 1 << 18
"""Pixels snapped at a time: bounds the (pixels x classes) distance table to a few MB for any image size."""


@dataclass(frozen=True)
class Palette:
    name: str
    classes: tuple[str, ...]
    colours: np.ndarray = field(repr=False)
    """(classes, 3) uint8 RGB, row i is class i's colour."""

    def __post_init__(self) -> None:
        colours = np.asarray(self.colours, np.uint8).reshape(-1, 3)
        if len(colours) != len(self.classes):
            raise ValueError(f"palette '{self.name}': {len(self.classes)} classes but {len(colours)} colours")
        if len({tuple(c) for c in colours.tolist()}) != len(colours):
            raise ValueError(f"palette '{self.name}': two classes share a colour")
        object.__setattr__(self, "colours", colours)

    def __len__(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"palette '{self.name}' has no class '{name}'; classes: {', '.join(self.classes)}") \
                from None

    def snap(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 colours -> HxW uint8 class indices, each pixel to the nearest palette colour (RGB distance)."""
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError(f"palette '{self.name}': expected an HxWx3 colour image, got shape {rgb.shape}")
        flat = rgb[..., :3].reshape(-1, 3).astype(np.int32)
        colours = self.colours.astype(np.int32)
        out = np.empty(len(flat), np.uint8)
        for start in range(0, len(flat), _CHUNK):
            chunk = flat[start:start + _CHUNK]
            distance = ((chunk[:, None, :] - colours[None, :, :]) ** 2).sum(2)
            out[start:start + _CHUNK] = distance.argmin(1)
        return out.reshape(rgb.shape[:2])

    def render(self, indices: np.ndarray) -> np.ndarray:
        """HxW class indices -> HxWx3 uint8 colours; an index outside the palette is an error."""
        idx = np.asarray(indices)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"palette '{self.name}': class index {int(idx.max())} outside 0..{len(self) - 1}")
        return self.colours[idx]

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (served to the drawing page, stored in exports)."""
        return {"name": self.name, "classes": list(self.classes),
                "colours": ["#{:02x}{:02x}{:02x}".format(*c) for c in self.colours.tolist()]}


FACADES = Palette(
    name="facades",
    # CMP Facade Database label order (Tyleček & Šára 2013); the pix2pix authors drew the maps with a jet
    # colour map in this order. Colours measured as the medians of flat regions of all 400 training maps.
    classes=("background", "facade", "window", "door", "cornice", "sill", "balcony", "blind", "deco",
             "molding", "pillar", "shop"),
    colours=np.array([
        (0, 0, 222), (0, 48, 255), (0, 128, 255), (0, 208, 255), (32, 255, 224), (112, 255, 142),
        (192, 255, 64), (255, 240, 0), (255, 160, 0), (255, 80, 0), (255, 0, 0), (174, 0, 0),
    ], np.uint8),
)

_PALETTES: dict[str, Palette] = {FACADES.name: FACADES}


def register_palette(palette: Palette) -> Palette:
    if palette.name in _PALETTES:
        raise ValueError(f"palette '{palette.name}' is registered twice")
    _PALETTES[palette.name] = palette
    return palette


def get_palette(name: str) -> Palette:
    try:
        return _PALETTES[name]
    except KeyError:
        raise KeyError(f"unknown palette '{name}'; known: {', '.join(sorted(_PALETTES))}") from None


def list_palettes() -> list[str]:
    return sorted(_PALETTES)
