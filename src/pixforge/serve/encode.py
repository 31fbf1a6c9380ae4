"""How a translated image leaves the server: the format a client asked for, and the one encoding function.

Every image the server returns is encoded by :func:`encode_output` and nowhere else, so watermarking,
provenance metadata and the safety filter apply to all of them once they live there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import HTTPException
from PIL import Image

if TYPE_CHECKING:
    from pixforge.serve.models import ServedModel


@dataclass(frozen=True)
class OutputFormat:
    media_type: str
    pillow_format: str
    options: dict[str, Any] = field(default_factory=dict)


FORMATS = {
    # Fast PNG compression: the server is CPU-bound, and the bytes cross a loopback or a LAN.
    "png": OutputFormat("image/png", "PNG", {"compress_level": 1}),
    "jpeg": OutputFormat("image/jpeg", "JPEG", {"quality": 90}),
    "webp": OutputFormat("image/webp", "WEBP", {"quality": 90}),
}
"""Output formats by the name the ``format`` query parameter takes."""
_ALIASES = {"jpg": "jpeg", "image/jpg": "jpeg", "*/*": "png", "image/*": "png"}


class UnsafeOutputError(Exception):
    """The safety filter flagged a generated image: the server answers 422 and returns no image."""


def choose_format(accept: str | None, query: str | None) -> str:
    """The output format: ``?format=`` wins, then the best ``Accept`` match; PNG when anything goes.

    An explicit but unsupported choice is the client's mistake: 400 for the parameter, 406 for Accept.
    """
    if query is not None:
        fmt = _ALIASES.get(query.lower(), query.lower())
        if fmt not in FORMATS:
            raise HTTPException(400, f"format '{query}' is not one of {', '.join(FORMATS)}")
        return fmt
    if not accept or not accept.strip():
        return "png"
    by_media = {f.media_type: name for name, f in FORMATS.items()} | _ALIASES
    offers = []  # (q, a named type before a wildcard, earlier before later, format)
    for rank, item in enumerate(accept.lower().split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        q = next((_quality(p) for p in params if p.replace(" ", "").startswith("q=")), 1.0)
        if media in by_media and q > 0:
            offers.append((q, not media.endswith("*"), -rank, by_media[media]))
    if not offers:
        raise HTTPException(406, f"Accept '{accept}' allows none of "
                                 f"{', '.join(f.media_type for f in FORMATS.values())}")
    return max(offers)[3]


def _quality(param: str) -> float:
    try:
        return float(param.partition("=")[2])
    except ValueError:
        return 0.0


def encode_output(image: np.ndarray, fmt: str, model: ServedModel) -> bytes:
    """An HxWxC uint8 output array -> the bytes of a ``fmt`` file (``png``, ``jpeg``, ``webp``).

    The one place generated images are encoded; raises :class:`UnsafeOutputError` for a flagged image.
    ``model`` is what the provenance record will name (the model's name and weights).
    """
    del model  # named by the provenance record once encoding goes through pixforge.provenance
    spec = FORMATS[fmt]
    buffer = io.BytesIO()
    array = image[:, :, 0] if image.shape[2] == 1 else image
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=spec.pillow_format, **spec.options)
    return buffer.getvalue()
