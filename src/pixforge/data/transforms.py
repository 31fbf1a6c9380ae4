"""Joint transforms for paired images, as the reference's ``data/base_dataset.py`` defines them.

Split in two stages so decoded images can be cached:

* :func:`prepare` is the deterministic part (resize), done once per image;
* :func:`sample_params` / :func:`eval_params` draw the random part (crop position, flip) once per
  item, and :func:`apply_params` applies the *same* parameters to A and B, which keeps them aligned.

Arrays are HxWxC uint8 or uint16 and keep their dtype. Pure functions, no global random state: the
caller passes a ``numpy.random.Generator``, so an item depends on its seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixforge.config import Preprocess

_POWER_BASE = 4
"""Reference ``__make_power_2(base=4)`` for ``preprocess: none``: sizes the networks can halve."""


@dataclass(frozen=True)
class AugmentParams:
    """The random part of one item's augmentation, applied identically to A and B."""

    crop: tuple[int, int] | None
    """(top, left) of the ``crop_size`` square, or None for no crop."""
    flip: bool
    """Mirror left-right."""


def crops(preprocess: Preprocess) -> bool:
    """Whether a mode crops ``crop_size`` squares (reference: ``'crop' in opt.preprocess``)."""
    return "crop" in preprocess


def prepared_size(
    size_hw: tuple[int, int], preprocess: Preprocess, load_size: int, crop_size: int
) -> tuple[int, int]:
    """The (height, width) :func:`prepare` produces, computable from an image header alone."""
    height, width = size_hw
    if preprocess == "resize_and_crop":
        return load_size, load_size
    if preprocess in ("scale_width", "scale_width_and_crop"):
        # Reference __scale_width: the height never drops below crop_size, so a crop always fits.
        if width == load_size and height >= crop_size:
            return height, width
        return int(max(load_size * height / width, crop_size)), load_size
    if preprocess == "none":
        # Python's round, as the reference's __make_power_2; at least one base so nothing vanishes.
        def nearest(n: int) -> int:
            return max(_POWER_BASE, int(round(n / _POWER_BASE) * _POWER_BASE))

        return nearest(height), nearest(width)
    return height, width  # "crop": the crop works on the image as stored


def prepare(arr: np.ndarray, preprocess: Preprocess, load_size: int, crop_size: int) -> np.ndarray:
    """Deterministic resize of one image (A or B) for ``preprocess``; cacheable."""
    height, width = prepared_size(arr.shape[:2], preprocess, load_size, crop_size)
    return resize(arr, height, width)


def resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize with Pillow (the reference's ``transforms.Resize(..., BICUBIC)``), same dtype."""
    if arr.shape[:2] == (height, width):
        return arr
    if arr.dtype == np.uint8 and arr.shape[2] == 3:
        return _resize_plane(arr, height, width)
    if arr.dtype == np.uint8:
        return np.stack([_resize_plane(arr[..., c], height, width) for c in range(arr.shape[2])], axis=2)
    if arr.dtype == np.uint16:
        # Float32 per channel keeps all 16 bits (exact up to 2**24); bicubic overshoot is clipped.
        planes = [_resize_plane(arr[..., c].astype(np.float32), height, width) for c in range(arr.shape[2])]
        return np.clip(np.rint(np.stack(planes, axis=2)), 0, 65535).astype(np.uint16)
    raise TypeError(f"expected uint8 or uint16 pixels, got {arr.dtype}")


def resize_nearest(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an HxW or HxWxC array of any dtype: for label and instance maps, whose
    values are class numbers that must not be blended. Picks the same source pixels as Pillow's NEAREST
    (what the pix2pixHD reference uses for labels), whatever the dtype."""
    if arr.shape[:2] == (height, width):
        return arr
    rows = _nearest_sources(arr.shape[0], height)
    cols = _nearest_sources(arr.shape[1], width)
    return np.ascontiguousarray(arr[rows][:, cols])


def _nearest_sources(size_in: int, size_out: int) -> np.ndarray:
    # Pillow (Geometry.c, ImagingScaleAffine) starts at half a step and adds the step in float64 pixel after
    # pixel; the accumulated rounding decides ties such as 256 -> 286, so add the same way (cumsum is
    # sequential) rather than computing each position exactly.
    step = size_in / size_out
    positions = np.cumsum(np.concatenate([[step * 0.5], np.full(size_out - 1, step)]))
    return np.clip(positions.astype(np.int64), 0, size_in - 1)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(plane).resize((width, height), Image.Resampling.BICUBIC))


def sample_params(
    size_hw: tuple[int, int], preprocess: Preprocess, crop_size: int, flip: bool, rng: np.random.Generator
) -> AugmentParams:
    """Draw a random crop position (crop modes) and a flip with p=0.5 (when ``flip``), for training."""
    crop = None
    if crops(preprocess):
        height, width = _check_fits(size_hw, crop_size)
        crop = int(rng.integers(0, height - crop_size + 1)), int(rng.integers(0, width - crop_size + 1))
    return AugmentParams(crop=crop, flip=bool(flip and rng.random() < 0.5))


def eval_params(size_hw: tuple[int, int], preprocess: Preprocess, crop_size: int) -> AugmentParams:
    """Deterministic parameters for validation: a centre crop and no flip.

    The reference crops at a random position even at test time; a centre crop makes validation
    numbers comparable between runs.
    """
    crop = None
    if crops(preprocess):
        height, width = _check_fits(size_hw, crop_size)
        crop = (height - crop_size) // 2, (width - crop_size) // 2
    return AugmentParams(crop=crop, flip=False)


def apply_params(arr: np.ndarray, params: AugmentParams, crop_size: int) -> np.ndarray:
    """Crop and flip one image; call it with the same ``params`` for A and B."""
    if params.crop is not None:
        top, left = params.crop
        arr = arr[top : top + crop_size, left : left + crop_size]
    if params.flip:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def _check_fits(size_hw: tuple[int, int], crop_size: int) -> tuple[int, int]:
    height, width = size_hw
    if height < crop_size or width < crop_size:
        raise ValueError(f"image {width}x{height} is smaller than crop_size {crop_size}")
    return height, width
