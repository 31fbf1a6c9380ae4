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

CONFIDENT_DISTANCE = 30
"""A pixel this close (RGB distance) to a palette colour is that class for sure; farther ones are blends."""
BORDER_WINDOW = 5
"""A blended pixel takes a class that is confidently present within this window around it."""
_BAND = 256
"""Rows snapped at a time: bounds the (classes x pixels) distance table to a few tens of MB for any size."""


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
        """HxWx3 colours -> HxW uint8 class indices.

        Label maps that were resized or JPEG-compressed have borders blended over 1-2 pixels, and a blend of
        two colours is often nearest to a third, unrelated one (blue + yellow lands on dark "background",
        red + blue on "shop"): plain nearest-colour snapping draws phantom outlines around every region. So
        pixels close to a palette colour keep it, and each blended pixel takes the nearest colour among the
        classes confidently present around it. Where no class is confident nearby, nearest colour decides.
        """
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError(f"palette '{self.name}': expected an HxWx3 colour image, got shape {rgb.shape}")
        halo = BORDER_WINDOW // 2
        out = np.empty(rgb.shape[:2], np.uint8)
        for top in range(0, rgb.shape[0], _BAND):  # bands overlap by the window so borders see their rows
            lo, hi = max(0, top - halo), min(rgb.shape[0], top + _BAND + halo)
            out[top:top + _BAND] = self._snap_band(rgb[lo:hi, :, :3])[top - lo:top - lo + _BAND]
        return out

    def _snap_band(self, rgb: np.ndarray) -> np.ndarray:
        diff = rgb[None].astype(np.int32) - self.colours.astype(np.int32)[:, None, None, :]
        distance = (diff * diff).sum(-1)  # (classes, H, W)
        nearest = distance.argmin(0)
        confident = np.take_along_axis(distance, nearest[None], 0)[0] < CONFIDENT_DISTANCE**2
        around = np.stack([_box_any(confident & (nearest == c), BORDER_WINDOW) for c in range(len(self))])
        constrained = np.where(around, distance, np.iinfo(np.int32).max)
        blended = ~confident & around.any(0)
        return np.where(blended, constrained.argmin(0), nearest).astype(np.uint8)

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


def _box_any(mask: np.ndarray, size: int) -> np.ndarray:
    """True where any pixel of the size x size window around it is True (box sum through cumulative sums)."""
    pad = size // 2
    s = np.pad(mask.astype(np.int32), pad).cumsum(0).cumsum(1)
    s = np.pad(s, ((1, 0), (1, 0)))
    return (s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]) > 0


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
