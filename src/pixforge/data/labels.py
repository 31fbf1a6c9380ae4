"""Label maps as network input (pix2pixHD, SPADE): class numbers -> one-hot channels (+ instance boundaries).

Label maps arrive as class-index images (8/16-bit PNG, pix2pixHD's ``train_label/``) or as colour drawings in a
palette (the facades maps, a browser drawing); either way they become an HxW map of class numbers, which is
checked against ``label_nc``, resized with nearest neighbour only (a blend of classes 3 and 5 is not class 4)
and encoded as ``label_nc`` one-hot channels. An instance map (object ids, e.g. Cityscapes' 26001 = car #1)
adds one channel that is 1 on the boundaries between instances, so that touching objects of the same class
stay apart (pix2pixHD section 3.4).

    classes = label_classes(read_index_map("label.png"), label_nc=35, source="label.png")
    x = encode_label_map(torch.from_numpy(classes), label_nc=35, instances=torch.from_numpy(inst))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixforge.data.image_io import ImageError
from pixforge.data.palette import Palette


class LabelError(ImageError):
    """A label map holds values the model cannot take; the message names the file, the value and its count."""


def label_classes(values: np.ndarray, label_nc: int, source: str | Path, ignore_label: int | None = None
                  ) -> np.ndarray:
    """Check an HxW map of class numbers against ``label_nc``; values >= label_nc become ``ignore_label`` or are
    refused, naming the first such value and how many pixels hold it. Returns uint8 (uint16 past 256 classes)."""
    values = np.asarray(values)
    bad = (values < 0) | (values >= label_nc)
    if bad.any():
        found, counts = np.unique(values[bad], return_counts=True)
        if ignore_label is None:
            others = f" (and {len(found) - 1} other values outside the range)" if len(found) > 1 else ""
            raise LabelError(source, f"label value {int(found[0])} in {int(counts[0])} pixels is outside "
                                     f"0..{label_nc - 1} (data.label_nc {label_nc}){others}; set data.ignore_label "
                                     f"to map such values to a class, or raise data.label_nc")
        values = np.where(bad, ignore_label, values)
    return values.astype(np.uint8 if label_nc <= 256 else np.uint16)


def classes_from_colours(rgb: np.ndarray, palette: Palette | None, source: str | Path) -> np.ndarray:
    """An HxWx3 label drawing -> HxW class numbers: snapped to ``palette``, or read as grey values when all three
    channels agree (a class-index map saved as RGB). Colours without a palette are refused."""
    if palette is not None:
        return palette.snap(rgb)
    if rgb.ndim == 3 and rgb.shape[2] == 3 and not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
        raise LabelError(source, "a colour image, not a class-index map (one class number per pixel); for colour "
                                 "label maps set data.input_palette to their palette")
    return rgb[..., 0] if rgb.ndim == 3 else rgb


def one_hot(classes: torch.Tensor, label_nc: int) -> torch.Tensor:
    """(B x) H x W integer classes -> (B x) label_nc x H x W float one-hot."""
    batched = classes.dim() == 3
    x = classes if batched else classes.unsqueeze(0)
    out = F.one_hot(x.long(), label_nc).permute(0, 3, 1, 2).float()
    return out if batched else out[0]


def instance_boundaries(instances: torch.Tensor) -> torch.Tensor:
    """(B x) H x W instance ids -> (B x) 1 x H x W float, 1 on both pixels of every edge between two instances."""
    batched = instances.dim() == 3
    t = instances if batched else instances.unsqueeze(0)
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    horizontal = t[:, :, 1:] != t[:, :, :-1]
    vertical = t[:, 1:, :] != t[:, :-1, :]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    out = edge.float().unsqueeze(1)
    return out if batched else out[0]


def encode_label_map(classes: torch.Tensor, label_nc: int, instances: torch.Tensor | None = None) -> torch.Tensor:
    """What a label-map generator takes: one-hot classes, then the instance boundary channel if instances are
    given ((B x) label_nc [+1] x H x W float)."""
    x = one_hot(classes, label_nc)
    if instances is None:
        return x
    return torch.cat([x, instance_boundaries(instances)], dim=-3)


_PREVIEW_SEED = 1234


def preview_colours(label_nc: int, palette: Palette | None = None) -> np.ndarray:
    """(label_nc, 3) uint8 colours to show a class map: the palette's, else fixed, well-spread random ones."""
    if palette is not None and len(palette) == label_nc:
        return palette.colours
    rng = np.random.default_rng(_PREVIEW_SEED)
    return rng.integers(40, 256, (label_nc, 3)).astype(np.uint8)


def render_classes(classes: np.ndarray, label_nc: int, palette: Palette | None = None,
                   instances: np.ndarray | None = None) -> np.ndarray:
    """HxW classes -> HxWx3 uint8 picture (instance boundaries drawn black), for sample grids and previews."""
    rgb = preview_colours(label_nc, palette)[np.asarray(classes, np.int64)]
    if instances is not None:
        edges = instance_boundaries(torch.from_numpy(np.asarray(instances, np.int64)))[0].numpy().astype(bool)
        rgb[edges] = 0
    return rgb


def label_map_classes(image: object, label_nc: int, palette: Palette | None = None, ignore_label: int | None = None,
                      source: str | Path = "label map") -> np.ndarray:
    """A label map as a user or a page hands it over -> HxW class numbers, checked against ``label_nc``.

    Accepted: an HxW integer array or tensor (class numbers), a PIL image in mode P / L / I (its values as
    stored: a palette PNG's indices, not its colours), or a colour image (PIL RGB, HxWx3 uint8) drawn in
    ``palette``, or grey (all channels equal).
    """
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, Image.Image):
        image = np.asarray(image) if image.mode in ("P", "L", "I", "I;16", "1") else np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{source}: expected a label map (PIL image, numpy array or tensor), got "
                        f"{type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        if image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise LabelError(source, f"an array of shape {image.shape}: expected HxW class numbers or an HxWx3 "
                                     f"uint8 colour label map")
        values = classes_from_colours(image[..., :3], palette, source)
    elif image.ndim == 2:
        if not np.issubdtype(image.dtype, np.integer):
            raise LabelError(source, f"class numbers must be integers, got {image.dtype}")
        values = image
    else:
        raise LabelError(source, f"an array of shape {image.shape}: expected HxW class numbers")
    return label_classes(values, label_nc, source, ignore_label)
