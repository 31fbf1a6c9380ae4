"""A request's image, from the first byte to the model's input array, refusing what the model cannot use.

Every refusal is an ``HTTPException`` with a 4xx status and a one-line ``detail`` naming the problem, so a
client's mistake never becomes a 5xx. The order is cheapest first: the declared length, the bytes as they
stream in, the format sniffed from the content (never the file name or Content-Type), the header's size and
pixel mode, and only then the pixels.

| status | when |
|---|---|
| 400 | empty body, a truncated or corrupt image, a malformed multipart form |
| 413 | a body over ``max_body_bytes``, or an image over ``max_pixels`` (read from the header; padded size too) |
| 415 | not an image, a format the server does not take, an animation, CMYK, 16-bit, or gray for a label map |
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from pixforge.data.image_io import (
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnsupportedImageError,
    probe_image_bytes,
    read_image_bytes,
)

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"BM", "BMP"))
"""The formats a request may use, by their magic bytes (plus WebP's RIFF container). TIFF and Pillow's
exotic decoders never see a request's bytes."""
BODY = "request body"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, f"Content-Length '{declared}' is not a number of bytes")
        if int(declared) > limit:
            raise HTTPException(413, f"{BODY} of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"{BODY} exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before the body was complete") from None
    return b"".join(chunks)


async def image_bytes(request: Request, body: bytes) -> bytes:
    """The encoded image: the body itself, or the first file of a multipart form (field name free)."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await _multipart_file(request, body)
    if not body:
        raise HTTPException(400, f"empty {BODY}; send the image as the body or as a multipart file")
    return body


async def _multipart_file(request: Request, body: bytes) -> bytes:
    async def replay():  # the body was already read (and counted): parse it from memory
        yield body
        yield b""

    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=16, max_part_size=len(body) + 1)
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise HTTPException(400, f"malformed multipart form: {err.message}") from None
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise HTTPException(400, "the multipart form holds no file; send the image as a file field")
        data = await files[0].read()
    finally:
        await form.close()
    if not data:
        raise HTTPException(400, f"the multipart file '{files[0].filename}' is empty")
    return data


def sniff_format(data: bytes) -> str | None:
    """The image format the content itself announces (magic bytes), as Pillow names it; None if none."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return "WEBP" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


def decode_image(data: bytes, channels: int, max_pixels: int, palette: str | None = None,
                 network_size: Callable[[int, int], tuple[int, int]] | None = None) -> np.ndarray:
    """Check and decode an encoded image to an HxWxC uint8 array with ``channels`` channels.

    ``palette`` names the model's input palette: a label map must be colour, so gray is refused for it.
    ``network_size(h, w)`` is the size the model runs an image at (rescaled, padded to its multiple): it must
    fit ``max_pixels`` too, or a 1x4000000 strip would run as 256x4000000 on a unet_256. Only the decoder for
    the sniffed format may read the bytes.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise HTTPException(415, f"{BODY} is not an image in an accepted format (PNG, JPEG, WebP, BMP or GIF)"
                                 f"{_looks_like(data)}")
    try:
        header = probe_image_bytes(data, BODY, max_pixels, (fmt,))
        _check_policy(header.format, header.mode, header.bits, palette)
        if network_size is not None:
            _check_network_size(header.height, header.width, network_size, max_pixels)
        return read_image_bytes(data, channels, BODY, max_pixels, (fmt,))
    except NotAnImageError:  # the magic bytes promised this format, its decoder disagrees
        raise HTTPException(400, f"{BODY}: starts like {fmt} but is not a readable {fmt} (truncated or corrupt)") \
            from None
    except ImageError as err:
        status = 413 if isinstance(err, ImageTooLargeError) else 415 if isinstance(err, UnsupportedImageError) else 400
        raise HTTPException(status, str(err)) from None


def _check_policy(fmt: str, mode: str, bits: int, palette: str | None) -> None:
    """What the server refuses although the data layer could read it (animations the data layer refuses
    itself; gray -> RGB and back are fine for image models: exact conversions, as the reference makes them)."""
    if mode == "CMYK":
        raise HTTPException(415, f"{BODY}: CMYK {fmt} needs a colour profile to become RGB; convert it to RGB "
                                 f"(sRGB) first")
    if bits == 16:
        raise HTTPException(415, f"{BODY}: 16-bit {fmt}; the server translates 8-bit images (save it as 8-bit, "
                                 f"or use `pixforge translate`, which keeps 16 bits)")
    gray = mode in ("1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I;16N")
    if palette and gray:
        raise HTTPException(415, f"{BODY}: a grayscale image, but this model translates colour label maps drawn "
                                 f"in the '{palette}' palette")


def _check_network_size(height: int, width: int, network_size: Callable[[int, int], tuple[int, int]],
                        max_pixels: int) -> None:
    net_h, net_w = network_size(height, width)
    if net_h * net_w > max_pixels:
        raise HTTPException(413, f"{BODY}: {width}x{height} runs as {net_w}x{net_h} = {net_w * net_h} pixels in this "
                                 f"model (its trained scale, padded to its size multiple), over max_pixels "
                                 f"{max_pixels}")


def _looks_like(data: bytes) -> str:
    """A hint for a body that is not an image: what it seems to be instead."""
    head = data[:512]
    for magic, what in ((b"%PDF", "a PDF"), (b"PK\x03\x04", "a ZIP archive"), (b"II*\x00", "TIFF"),
                        (b"MM\x00*", "TIFF")):
        if head.startswith(magic):
            return f"; it looks like {what}"
    if head[4:8] == b"ftyp":
        return "; it looks like HEIC/AVIF or MP4 (ISO media)"
    text = head.decode("utf-8", "replace").lstrip()
    if any(c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f") for c in text[:-4]):
        return ""  # binary (the last few bytes may be a character cut in half)
    if "<svg" in text[:300]:
        return "; it looks like SVG (vector images are not accepted)"
    if text.startswith("<"):
        return "; it looks like HTML or XML"
    return "; it looks like JSON" if text[:1] in "{[" else "; it looks like text"
