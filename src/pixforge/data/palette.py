"""Colour palettes of label maps: class names, their colours, and snapping a drawn or JPEG'd map to classes.

Label maps are often stored as colour images (the facades set, a drawing in the browser). A network that
wants class indices (one-hot input, per-class metrics) has to snap each pixel to a palette class; inside
regions that is the nearest colour, at borders and thin stripes it takes a model of resizing and JPEG
(``Palette.snap``).

    facades = get_palette("facades")
    classes = facades.snap(label_rgb)        # HxW uint8 class indices
    drawing = facades.render(classes)        # back to HxWx3 uint8 colours
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CONFIDENT_DISTANCE = 30
"""A pixel this close (RGB distance) to a palette colour is that class for sure; farther ones are blends."""
PRESENT_WINDOWS = (15, 31, 63)
"""A class confidently seen within the first of these windows around a pixel that shows any counts as present
there (the larger ones reach into groups of thin stripes, where nothing is confident)."""
CHROMA_WEIGHT = 0.5
"""Chroma errors count half: JPEG quantises chroma far more coarsely than luma."""
WASH_COST = 60.0
"""Cost of explaining a pixel's chroma as washed towards a neighbour's, per unit of wash (squared 8-bit units)."""
MIN_CHROMA_SHARE = 0.35
"""A class must keep at least this share of a pixel's chroma: luma alone does not make a class (pillar has the
luma of a facade/window blend)."""
ABSENT_COST = 30.0
"""Extra cost of a class that is not confidently present nearby (it may still be a thin, washed-out stripe)."""
ABSENT_BLEND_COST = 200.0
"""Cost per unit of luma blend for a class that is not present nearby: such a class (a washed stripe) is
mostly explained by its own luma; blended borders belong to classes that are really there."""
ABSENT_NEIGHBOUR_COST = 60.0
"""Extra cost of blending towards a class that is not confidently present nearby."""
UNEXPLAINED_COST = 300.0
"""Above this cost nothing explains a pixel (JPEG ringing, three-way corners): it takes a class present nearby."""
RAMP_EDGE = 80.0
"""RGB distance between the pixels two steps before and after a pixel that makes them an edge."""
RAMP_FIT = 18.0
"""How close (RGB) a pixel must lie to the line between those two to count as a blend across the edge."""
EXACT_DISTANCE = 4
"""A pixel this close to its palette colour was drawn, not blended (a hand-drawn map is exact everywhere)."""
_BAND = 256
"""Rows snapped at a time: bounds the per-pixel cost tables to a few tens of MB for any image size."""
_CHUNK = 16384
"""Uncertain pixels scored at a time."""
_HALO = PRESENT_WINDOWS[-1] // 2 + 2
"""Rows a band needs above and below it: the presence window, then the edge test's two steps."""
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
"""RGB -> Y'CbCr as JPEG defines it (offsets left out: only differences matter)."""


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
        """HxWx3 colours -> HxW uint8 class indices, as a viewer would read the map.

        Label maps that were resized and JPEG-compressed differ from their palette in three ways, each of which
        plain nearest-colour snapping gets wrong:

        * borders are blended over 1-2 pixels, and a blend of two colours is often nearest to a third class
          (facade + door is exactly window; blue + yellow lands on dark "background"): phantom outlines;
        * JPEG keeps colour (chroma) at half resolution, so a 2-4 pixel stripe keeps its brightness (luma) but
          its colour is washed towards its surroundings: a yellow "blind" bar between blue reads as "balcony";
        * thin gaps between two regions (a facade strip between shops) have no pixel close to their colour.

        So pixels close to a palette colour keep it, and the others are explained in Y'CbCr by a model of
        how the map was made: the pixel's luma is class k's, or a blend of k (at least half) with a class n seen
        nearby; its chroma is k's, washed towards n's (keeping at least a third of k's). Each (k, n) pays for
        its luma and chroma misfit, for the wash, and for classes not confidently present nearby (a thin washed
        stripe may have none; it then pays more for luma blending, which belongs to borders of classes really
        there). Last, a pixel on the colour line between the pixels two steps before and after it, at an edge
        between two other classes, takes the nearer side. Measured on five facades maps checked by eye
        (``tests/data/test_palette.py``): about 99% of pixels get the visually correct class.
        """
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError(f"palette '{self.name}': expected an HxWx3 colour image, got shape {rgb.shape}")
        out = np.empty(rgb.shape[:2], np.uint8)
        for top in range(0, rgb.shape[0], _BAND):  # bands overlap by the halo so borders see their rows
            lo, hi = max(0, top - _HALO), min(rgb.shape[0], top + _BAND + _HALO)
            out[top:top + _BAND] = self._snap_band(rgb[lo:hi, :, :3])[top - lo:top - lo + _BAND]
        return out

    def _snap_band(self, rgb: np.ndarray) -> np.ndarray:
        diff = rgb[None].astype(np.int32) - self.colours.astype(np.int32)[:, None, None, :]
        distance = (diff * diff).sum(-1)  # (classes, H, W)
        nearest = distance.argmin(0)
        confident = np.take_along_axis(distance, nearest[None], 0)[0] < CONFIDENT_DISTANCE**2
        present = self._present(confident, nearest)
        classes = nearest.astype(np.uint8)
        uncertain = np.flatnonzero(~confident)
        observed = rgb.reshape(-1, 3).astype(np.float64) @ _YCC.T
        for start in range(0, len(uncertain), _CHUNK):
            pixels = uncertain[start:start + _CHUNK]
            classes.reshape(-1)[pixels] = self._explain(observed[pixels], present.reshape(-1, len(self))[pixels])
        drawn = np.take_along_axis(distance, nearest[None], 0)[0] <= EXACT_DISTANCE**2
        return np.where(drawn, classes, _settle_edges(rgb, classes))

    def _present(self, confident: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """(H, W, classes): which classes are confidently seen around each pixel, looking wider where none is."""
        present = np.zeros((*nearest.shape, len(self)), bool)
        for window in PRESENT_WINDOWS:
            lacking = ~present.any(-1)
            for c in range(len(self)):
                present[..., c] |= lacking & _box_any(confident & (nearest == c), window)
        return present

    def _explain(self, observed: np.ndarray, present: np.ndarray) -> np.ndarray:
        """The class k of the cheapest (k, n) explanation of each pixel (Y'CbCr rows, presence per class).

        Arrays are (pixels, k, n); chroma distances are expanded algebraically so that nothing larger is built.
        """
        palette = (self.colours.astype(np.float64) @ _YCC.T).astype(np.float32)
        observed = observed.astype(np.float32)
        absent_k = ~present[:, :, None]
        absent_n = ~present[:, None, :]
        same = np.eye(len(self), dtype=bool)
        # Luma: k's, or blended with n's where k holds at least half; blending costs more for an absent k.
        luma_n = palette[None, :, 0]
        luma_gap = palette[:, 0, None] - luma_n  # (k, n)
        flat = np.abs(luma_gap) < 1e-6
        y = observed[:, 0, None, None] - luma_n  # the pixel's luma above n's
        alpha = (y / np.where(flat, 1.0, luma_gap)).clip(0.5, 1.0)
        alpha[:, flat] = 1.0
        cost = (y - alpha * luma_gap) ** 2 + ABSENT_BLEND_COST * (1 - alpha) * absent_k
        # Chroma: anywhere on the line from n's to k's (beta = the share of k).
        towards_k = palette[:, None, 1:] - palette[None, :, 1:]  # (k, n, 2)
        span = (towards_k**2).sum(-1)
        relative = observed[:, None, 1:] - palette[None, :, 1:]  # (pixels, n, 2)
        along = relative[:, None, :, 0] * towards_k[:, :, 0] + relative[:, None, :, 1] * towards_k[:, :, 1]
        beta = (along / np.where(same, 1.0, span)).clip(0.0, 1.0)
        beta[:, same] = 1.0
        chroma_error = (relative**2).sum(-1)[:, None, :] - 2 * beta * along + beta**2 * span
        cost += CHROMA_WEIGHT * chroma_error + WASH_COST * (1 - beta) * ~same
        cost += ABSENT_NEIGHBOUR_COST * (absent_n & ~same)
        cost[((beta < MIN_CHROMA_SHARE) | (absent_k & absent_n)) & ~same] = np.inf  # far-fetched blends
        best = cost.min(2) + ABSENT_COST * ~present
        choice = best.argmin(1)
        # Unexplained pixels take the best class that is really there, rather than a far-fetched other one.
        unexplained = (best.min(1) > UNEXPLAINED_COST) & present.any(1)
        choice[unexplained] = np.where(present, best, np.inf)[unexplained].argmin(1)
        return choice.astype(np.uint8)

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


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a[y + dy, x + dx]``, the border repeated beyond the edges."""
    rows = np.clip(np.arange(a.shape[0]) + dy, 0, a.shape[0] - 1)
    cols = np.clip(np.arange(a.shape[1]) + dx, 0, a.shape[1] - 1)
    return a[rows][:, cols]


def _settle_edges(rgb: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A pixel of a third class that lies on the colour line between the pixels two steps before and after
    it (across an edge between two other classes) is a blend: give it the side it is nearer to. This catches
    the blends that come close to a palette colour, such as facade + door = window, which no colour test can."""
    colour = rgb.astype(np.float32)
    out, strongest = classes.copy(), np.zeros(classes.shape, np.float32)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        before, after = _shifted(colour, -2 * dy, -2 * dx), _shifted(colour, 2 * dy, 2 * dx)
        side_before, side_after = _shifted(classes, -2 * dy, -2 * dx), _shifted(classes, 2 * dy, 2 * dx)
        edge = before - after
        strength = (edge * edge).sum(-1)
        t = ((colour - after) * edge).sum(-1) / np.maximum(strength, 1e-9)  # 1 at `before`, 0 at `after`
        off_line = colour - (after + t[..., None] * edge)
        blend = ((strength > RAMP_EDGE**2) & ((off_line * off_line).sum(-1) < RAMP_FIT**2) & (t > 0.1) & (t < 0.9)
                 & (side_before != side_after) & (classes != side_before) & (classes != side_after)
                 & (strength > strongest))
        out = np.where(blend, np.where(t >= 0.5, side_before, side_after), out)
        strongest = np.where(blend, strength, strongest)
    return out


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
