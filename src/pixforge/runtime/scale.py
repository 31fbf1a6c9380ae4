"""Apply a generator to images of any size, at the scale it was trained at.

Training resizes its source images before cropping (facades: 256 -> 286, maps: 600 -> 286). A network learns
the scale of what it saw, so a maps model applied to a 600x600 tile at its own size sees everything about
twice as large as in training. The trainer records the source images' median size in the config
(``data.source_size``); from it and ``preprocess``/``load_size`` follows the factor to resize an input by.

Scale modes (``Translator(scale=...)``, ``pixforge translate --scale``):

``auto`` (default)
    The trained scale, but only where it matters: inputs are rescaled when the trained factor differs from 1
    by more than 25%, and the rescaled size snaps to the generator's size multiple when that moves the scale
    by at most 12.5% (a unet_256 maps model then runs a 600x600 tile at 256x256, not at 286x286 padded to
    512x512: a quarter of the compute). facades' 286/256 (+12%) is left alone: resizing would blur the input
    and pad a unet_256 input to 512x512, four times the compute, for a 12% scale change.
``trained``
    Exactly the trained scale (padding to the multiple as needed).
``native``
    The input's own scale, only mirror-padded to the multiple.
``reference``
    What the reference's ``test.py`` does: resize to ``crop_size`` (``resize_and_crop``; squares, as it does)
    or scale the width to ``crop_size`` (``scale_width*``); ``none`` rounds to multiples of 4.

Whatever the mode, the output comes back at the input's own size. Checkpoints that do not record the source
size (imported reference runs, older pixforge) run natively under ``auto``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixforge.config import DataConfig
from pixforge.runtime.device import autocast

ScaleMode = Literal["auto", "trained", "native", "reference"]
SCALE_MODES: tuple[str, ...] = ("auto", "trained", "native", "reference")
Resample = Literal["bicubic", "nearest"]

WORTH_RESCALING = 1.25
"""``auto`` rescales only when the trained scale is off by more than this factor (either way)."""
SNAP_TOLERANCE = 1.125
"""``auto`` rounds a rescaled side to the generator's multiple when that moves the scale by at most this."""


def check_scale_mode(mode: str, option: str = "scale") -> ScaleMode:
    if mode not in SCALE_MODES:
        raise ValueError(f"{option}: '{mode}' is not one of {', '.join(SCALE_MODES)}")
    return mode  # type: ignore[return-value]


def trained_factors(data: DataConfig) -> tuple[float, float] | None:
    """(height, width) factors training resized its source images by; None where the source size is unknown."""
    if data.source_size is None:
        return None
    source_h, source_w = data.source_size
    if data.preprocess == "resize_and_crop":
        return data.load_size / source_h, data.load_size / source_w
    if data.preprocess in ("scale_width", "scale_width_and_crop"):
        return data.load_size / source_w, data.load_size / source_w
    return 1.0, 1.0  # "crop" and "none" train at the images' own scale


def reference_size(h: int, w: int, data: DataConfig) -> tuple[int, int]:
    """The size the reference's test.py feeds the network (it sets load_size = crop_size at test time)."""
    crop = data.crop_size
    if data.preprocess == "resize_and_crop":
        return crop, crop
    if data.preprocess in ("scale_width", "scale_width_and_crop"):
        return int(max(crop * h / w, crop)), crop
    if data.preprocess == "none":
        return max(4, round(h / 4) * 4), max(4, round(w / 4) * 4)
    return h, w


def inference_size(h: int, w: int, data: DataConfig, mode: str, multiple: int) -> tuple[int, int]:
    """The size an HxW input is resized to before the generator runs (then padded to ``multiple``)."""
    check_scale_mode(mode)
    if mode == "native":
        return h, w
    if mode == "reference":
        return reference_size(h, w, data)
    factors = trained_factors(data)
    if factors is None:
        if mode == "trained":
            raise ValueError("scale 'trained': this model's checkpoint does not record the size of its training "
                             "images (imported, or older than this pixforge); use auto, native or reference")
        return h, w
    th, tw = max(1, round(h * factors[0])), max(1, round(w * factors[1]))
    if mode == "trained":
        return th, tw
    if max(abs(math.log(th / h)), abs(math.log(tw / w))) <= math.log(WORTH_RESCALING):
        return h, w
    return _snap(th, multiple), _snap(tw, multiple)


def _snap(n: int, multiple: int) -> int:
    snapped = max(multiple, round(n / multiple) * multiple)
    return snapped if max(snapped / n, n / snapped) <= SNAP_TOLERANCE else n


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W on the bottom/right up to a multiple; mirror the image where it is large enough."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    # Reflection avoids the dark borders zero padding would teach the network to draw; it needs the
    # pad to be smaller than the image, so tiny images fall back to repeating the edge.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def resize(x: torch.Tensor, size: tuple[int, int], resample: Resample = "bicubic") -> torch.Tensor:
    """Resize a float batch; bicubic is antialiased (downscaling without aliasing), nearest keeps labels exact."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if resample == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def apply_generator(generator: nn.Module, batch: torch.Tensor, *, multiple: int, size: tuple[int, int] | None,
                    device: torch.device, precision: str = "fp32",
                    memory_format: torch.memory_format = torch.contiguous_format,
                    resample: Resample = "bicubic", one_by_one: bool = False) -> torch.Tensor:
    """B x C x H x W in [-1, 1] -> the generator's output at H x W, float32 on the CPU.

    The batch is resized to ``size`` (None: as it is), padded to ``multiple``, translated, cropped and resized
    back. The caller chooses the network's mode (``nn.modes``); ``one_by_one`` runs the images separately
    (the paper's batch-1 statistics). ``precision`` is resolved (fp32, bf16 or fp16).
    """
    h, w = batch.shape[-2:]
    x = resize(batch.float(), size, resample) if size is not None else batch.float()
    th, tw = x.shape[-2:]
    x = pad_to_multiple(x, multiple).to(device, memory_format=memory_format)
    with torch.inference_mode(), autocast(precision, device):
        y = torch.cat([generator(x[i:i + 1]) for i in range(len(x))]) if one_by_one else generator(x)
    y = y[..., :th, :tw].float()
    if (th, tw) != (h, w):
        y = resize(y, (h, w)).clamp_(-1.0, 1.0)
    return y.cpu().contiguous()
