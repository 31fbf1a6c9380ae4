"""A paired dataset made in code: facade-like label maps -> shaded, textured renderings.

``pixforge demo`` must run offline, in minutes, on a CPU, with nothing copyrighted and no people in
it. So the pairs are drawn here: A is a flat label map (one exact colour per class, like the CMP
facades labels), B a "rendering" of the same layout where each class gets a texture (brick, shingles,
glass, planks, foliage, sky gradient) and simple shading. The mapping is deterministic enough to be
learnt by a small U-Net at 64x64 in a few minutes, yet not a per-pixel colour lookup: edges, shadows
and textures depend on the neighbourhood.

The light comes from straight above (highlights on top edges, shadows below overhangs), not from a
side: the demo preset trains with horizontal flips, and a side light would make flipped pairs
contradict unflipped ones.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import numpy as np

from pixforge.data.image_io import write_image

PALETTE: dict[str, tuple[int, int, int]] = {
    "sky": (40, 40, 140),
    "wall": (230, 120, 40),
    "window": (40, 170, 230),
    "door": (150, 60, 170),
    "roof": (200, 30, 40),
    "plant": (60, 190, 60),
}
"""Class name -> RGB of the label map (A). Order defines the class index."""

SKY, WALL, WINDOW, DOOR, ROOF, PLANT = range(len(PALETTE))
_PALETTE_ARRAY = np.array(list(PALETTE.values()), dtype=np.uint8)

# Relief of each class, used for shading: windows and doors are recessed into walls, plants stand
# in front of everything, the roof overhangs the wall slightly.
_HEIGHT = np.array([0.0, 1.0, 0.55, 0.6, 1.25, 1.6], dtype=np.float32)

GENERATOR_VERSION = 1
"""Bump when the drawing changes, so :func:`write_blocks_dataset` regenerates stale folders."""

_MANIFEST = "dataset.json"
_PAIR_NAME = re.compile(r"\d{4,}\.png")


# ---------------------------------------------------------------------------------------------
# Layout: the label map


def _draw_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random facade-like scene as an HxW int class map (buildings, roofs, windows, doors, plants)."""
    labels = np.full((size, size), SKY, dtype=np.int64)
    yy, xx = np.mgrid[0:size, 0:size]
    s = size / 64.0  # every length below is designed at 64 px and scaled

    n_buildings = int(rng.integers(1, 4))
    for _ in range(n_buildings):
        width = int(rng.integers(round(20 * s), round(44 * s) + 1))
        x0 = int(rng.integers(-width // 4, size - 3 * width // 4))
        x1 = x0 + width
        top = int(rng.integers(round(16 * s), round(34 * s) + 1))
        cx0, cx1 = max(x0, 0), min(x1, size)
        labels[top:, cx0:cx1] = WALL

        roof_h = int(rng.integers(round(6 * s), round(14 * s) + 1))
        overhang = int(rng.integers(0, round(3 * s) + 1))
        if rng.random() < 0.65:  # gable: a triangle standing on the wall's top edge
            apex_x = (x0 + x1) / 2.0
            half = width / 2.0 + overhang
            t = (yy - (top - roof_h)) / roof_h
            roof = (t >= 0) & (yy < top) & (np.abs(xx - apex_x) <= t * half)
        else:  # flat roof: a slab wider than the wall
            slab = max(2, roof_h // 3)
            roof = (yy >= top - slab) & (yy < top) & (xx >= x0 - overhang) & (xx < x1 + overhang)
        labels[roof] = ROOF

        # Windows: a regular grid with a random cell size, a few left out.
        win_w = int(rng.integers(round(4 * s), round(8 * s) + 1))
        win_h = int(rng.integers(round(5 * s), round(9 * s) + 1))
        gap_x = int(rng.integers(round(3 * s), round(6 * s) + 1))
        gap_y = int(rng.integers(round(3 * s), round(6 * s) + 1))
        n_cols = max(1, (width - gap_x) // (win_w + gap_x))
        margin = (width - n_cols * win_w - (n_cols - 1) * gap_x) // 2
        door_w = int(rng.integers(round(6 * s), round(10 * s) + 1))
        door_h = int(rng.integers(round(10 * s), round(16 * s) + 1))
        y = top + gap_y
        while y + win_h < size - door_h // 2:
            for col in range(n_cols):
                if rng.random() < 0.12:
                    continue
                wx = x0 + margin + col * (win_w + gap_x)
                labels[y:y + win_h, max(wx, cx0):min(wx + win_w, cx1)] = WINDOW
            y += win_h + gap_y

        door_x = x0 + int(rng.integers(max(1, width // 5), max(2, width - width // 5 - door_w)))
        labels[size - door_h:, max(door_x, cx0):min(door_x + door_w, cx1)] = DOOR

    # Plants: bushes on the ground and the odd tree crown, in front of the buildings.
    for _ in range(int(rng.integers(1, 5))):
        rx = rng.uniform(4, 11) * s
        ry = rx * rng.uniform(0.6, 1.0)
        cx = rng.uniform(0, size)
        cy = size - ry * rng.uniform(0.3, 0.9) if rng.random() < 0.75 else rng.uniform(0.35, 0.75) * size
        labels[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0] = PLANT
    return labels


# ---------------------------------------------------------------------------------------------
# Rendering: textures per class, then shading from the relief


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a coarse random grid bilinearly upsampled (soft blobs, not pixel noise)."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    pos = np.linspace(0, cells, size, dtype=np.float32)
    i = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _shift(a: np.ndarray, dy: int, dx: int = 0) -> np.ndarray:
    """``out[y, x] = a[y - dy, x - dx]``, edges replicated (no wrap-around like np.roll)."""
    h, w = a.shape
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return a[ys][:, xs]


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Separable (2r+1)^2 box blur with replicated edges."""
    out = sum(_shift(a, 0, d) for d in range(-r, r + 1)) / (2 * r + 1)
    return sum(_shift(out, d, 0) for d in range(-r, r + 1)) / (2 * r + 1)


def _render(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Texture each class, then shade by a relief map lit from above; returns HxWx3 uint8."""
    size = labels.shape[0]
    s = size / 64.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    fine = rng.uniform(-1.0, 1.0, (size, size)).astype(np.float32)  # per-pixel grain
    soft = _smooth_noise(rng, size, max(2, round(8 * s)))
    rgb = np.empty((len(PALETTE), size, size, 3), dtype=np.float32)

    def colour(c: tuple[float, float, float], amount: np.ndarray | float) -> np.ndarray:
        return np.asarray(c, np.float32) * np.asarray(amount, np.float32)[..., None]

    # Sky: a vertical gradient, deep blue at the top to haze at the horizon.
    t = (yy / (size - 1))[..., None]
    rgb[SKY] = (1 - t) * np.array([95, 150, 225], np.float32) + t * np.array([205, 225, 240], np.float32)

    # Wall: running-bond bricks; each brick its own shade, light mortar lines between them.
    bh = max(3, round(4 * s))
    bw = 2 * bh
    row = (yy // bh).astype(np.int64)
    col = ((xx + (row % 2) * bh) // bw).astype(np.int64)
    brick_shade = rng.uniform(0.82, 1.08, (size // bh + 2, size // bw + 3)).astype(np.float32)
    mortar = (yy % bh == bh - 1) | ((xx + (row % 2) * bh) % bw == bw - 1)
    brick = colour((178, 88, 62), brick_shade[row, col] + 0.04 * fine)
    rgb[WALL] = np.where(mortar[..., None], colour((215, 205, 190), 1 + 0.03 * fine), brick)

    # Roof: dark slate shingles, horizontal courses that darken row by row.
    course = max(2, round(3 * s))
    rgb[ROOF] = colour((92, 72, 80), 1.0 - 0.22 * ((yy % course) / course) + 0.05 * fine)

    # Window glass: dark blue with a diagonal sheen.
    sheen = (np.sin((xx + yy) * (0.9 / s)) > 0.55).astype(np.float32)
    rgb[WINDOW] = colour((40, 70, 110), 1 + 0.04 * fine) + sheen[..., None] * np.float32(45)

    # Door: vertical wooden planks.
    plank = max(2, round(3 * s))
    rgb[DOOR] = colour((120, 78, 40), 1.0 - 0.2 * (xx % plank == 0) + 0.08 * fine)

    # Plants: blotchy foliage.
    rgb[PLANT] = colour((62, 135, 52), 1 + 0.25 * soft + 0.12 * fine)

    image = np.take_along_axis(rgb, labels[None, ..., None], axis=0)[0]

    # White frames around windows: the window pixels on the window's border.
    win = labels == WINDOW
    frame = win & ~(_shift(win, 1) & _shift(win, -1) & _shift(win, 0, 1) & _shift(win, 0, -1))
    image[frame] = np.array([235, 232, 225], np.float32)

    # Shading from a relief map lit from straight above: surfaces whose neighbour above is lower
    # catch light (top edges), those below a higher neighbour fall into its shadow.
    height = _HEIGHT[labels]
    soft_h = _box_blur(height, max(1, round(s)))
    slope = _shift(soft_h, -1) - _shift(soft_h, 1)  # > 0 where the surface rises going down: lit
    shadow = np.zeros_like(height)
    reach = max(2, round(4 * s))
    for k in range(1, reach + 1):
        shadow = np.maximum(shadow, (_shift(height, k) - height) * (1 - (k - 1) / reach))
    # Highlights only on the raised side of an edge: lighting the sky above a roof reads as a halo.
    lit = np.clip(slope, 0, 1) * ((height >= soft_h) & (labels != SKY))
    shade = 1.0 + 0.35 * lit - 0.35 * np.clip(-slope, 0, 1) - 0.45 * np.clip(shadow, 0, 1)
    image *= shade[..., None]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def make_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (label map, rendering) pair, both HxWx3 uint8; all randomness comes from ``rng``."""
    if size < 16:
        raise ValueError(f"size {size}: procedural scenes need at least 16 px")
    labels = _draw_layout(rng, size)
    return _PALETTE_ARRAY[labels], _render(rng, labels)


# ---------------------------------------------------------------------------------------------
# On disk, in the pix2pix aligned format


def _pair_rng(seed: int, split: int, index: int) -> np.random.Generator:
    """One stream per pair: file 0007 is the same picture whatever n_train or n_val are."""
    return np.random.default_rng([seed, split, index])


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_blocks_dataset(root: Path, n_train: int = 400, n_val: int = 16, size: int = 64,
                         seed: int = 0) -> Path:
    """Write ``root/{train,val}/0001.png ...``, each an aligned A|B pair (width ``2 * size``).

    Idempotent: ``root/dataset.json`` records the parameters and is marked complete only after the
    last image, so a folder made with the same parameters is left alone and an interrupted or
    different one is redrawn. Pair files are only deleted in folders that manifest marks as ours.
    """
    root = Path(root)
    params = {"generator": "blocks", "version": GENERATOR_VERSION, "n_train": n_train, "n_val": n_val,
              "size": size, "seed": seed}
    manifest = root / _MANIFEST
    counts = {"train": n_train, "val": n_val}
    if manifest.exists():
        try:
            previous = json.loads(manifest.read_text())
        except (OSError, ValueError):
            previous = {}
        if (previous.get("params") == params and previous.get("complete")
                and all(len(list((root / split).glob("*.png"))) == n for split, n in counts.items())):
            return root
        for split in counts:
            for f in (root / split).glob("*.png") if (root / split).is_dir() else ():
                if _PAIR_NAME.fullmatch(f.name):
                    f.unlink()
    else:
        foreign = [p for split in counts if (root / split).is_dir() for p in (root / split).iterdir()]
        if foreign:
            raise FileExistsError(f"{root}: has files in train/ or val/ but no {_MANIFEST}; refusing to mix "
                                  "a procedural dataset into it - choose an empty or new folder")

    root.mkdir(parents=True, exist_ok=True)
    _write_json(manifest, {"params": params, "complete": False})
    for split_index, (split, n) in enumerate(counts.items()):
        digits = max(4, len(str(n)))
        for i in range(n):
            a, b = make_pair(_pair_rng(seed, split_index, i), size)
            write_image(np.concatenate([a, b], axis=1), root / split / f"{i + 1:0{digits}d}.png")
    _write_json(manifest, {"params": params, "complete": True})
    return root
