"""Decode, validate and write images: the one place pixels enter or leave pixforge.

Every failure becomes an :class:`ImageError` whose one-line message names the file and what was
expected, so a bad file in a 100k-image dataset is found from the log line alone. 16-bit sources stay
16-bit (uint16) end to end: Pillow silently reduces 16-bit RGB PNG to 8 bits, so those are decoded
with ``pypng`` instead, and 16-bit RGB TIFF (which Pillow also reduces) is refused rather than
truncated.

Files are read by path; bytes that arrive some other way (an HTTP request body) go through the same checks
with :func:`probe_image_bytes` and :func:`read_image_bytes`. The kind of failure is the error's type
(:class:`CorruptImageError`, :class:`ImageTooLargeError`, :class:`UnsupportedImageError` and its
:class:`NotAnImageError`), so a caller can answer each differently without parsing messages.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 89_478_485
"""Pillow's own ``Image.MAX_IMAGE_PIXELS`` (a 0.25 GB 24-bit image)."""

_EXIF_ORIENTATION = 0x0112
_TIFF_BITS_PER_SAMPLE = 258
_GRAY16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_GRAY8_MODES = frozenset({"1", "L", "LA", "La"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES_PILLOW_REDUCES = frozenset({2, 4, 6})  # RGB, gray+alpha, RGBA at 16 bits
# Modes whose values have no fixed range: any mapping to 8/16 bits would be a guess.
_NO_FIXED_RANGE = {"F": "32-bit float", "I": "32-bit integer"}


class ImageError(ValueError):
    """A file cannot be used as an image; the one-line message names it and what was expected."""

    def __init__(self, path: str | Path, problem: str = "") -> None:
        # ``problem`` may be empty so that ``ImageError(message)`` works too: that is how torch's
        # DataLoader re-raises a worker's exception, and without it the type would be lost.
        super().__init__(f"{path}: {problem}" if problem else str(path))
        self.path = Path(path)
        self.problem = problem

    def __reduce__(self) -> tuple[type[ImageError], tuple[Path, str]]:
        return type(self), (self.path, self.problem)


class CorruptImageError(ImageError):
    """The data claims to be an image but is truncated or damaged."""


class ImageTooLargeError(ImageError):
    """The header announces more pixels than allowed (``max_pixels``: decompression bombs)."""


class UnsupportedImageError(ImageError):
    """Not an image, a format not accepted, or a pixel mode that cannot become 8/16-bit gray or RGB."""


class NotAnImageError(UnsupportedImageError):
    """No decoder (of those allowed) recognises the data as an image at all."""


Source = str | Path | bytes
"""A file path, or the encoded image itself (the ``*_bytes`` functions)."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding pixels (EXIF orientation applied)."""

    height: int
    width: int
    bits: int
    """Bits per sample as returned by :func:`read_image`: 8 or 16."""
    format: str = ""
    """Pillow's name for the container: PNG, JPEG, WEBP, GIF, ..."""
    mode: str = ""
    """Pillow's pixel mode as stored: L, RGB, RGBA, P, CMYK, I;16, ..."""


def probe_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Validate a file from its header alone: cheap enough to run over a whole dataset up front."""
    return _probe(path, path, max_pixels, None)


def probe_image_bytes(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS,
                      formats: tuple[str, ...] | None = None) -> ImageHeader:
    """:func:`probe_image` for an encoded image in memory; ``name`` stands for the file in messages.

    ``formats`` (Pillow names, e.g. ``("PNG", "JPEG")``) limits which decoders may even look at the
    data: the content decides the format, never a file name or a declared type.
    """
    return _probe(data, name, max_pixels, formats)


def read_image(path: str | Path, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image to an HxWxC array: uint8 for 8-bit sources, uint16 for 16-bit ones.

    ``channels`` is 1 (ITU-R 601 luma, as Pillow's ``L``) or 3 (gray is replicated). Alpha is
    dropped, not composited: that keeps the stored colour values and matches the reference's
    ``Image.open(path).convert('RGB')``. EXIF orientation is applied.
    """
    return _read(path, path, channels, max_pixels, None)


def read_image_bytes(data: bytes, channels: int, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS,
                     formats: tuple[str, ...] | None = None) -> np.ndarray:
    """:func:`read_image` for an encoded image in memory (see :func:`probe_image_bytes`)."""
    return _read(data, name, channels, max_pixels, formats)


def _probe(source: Source, name: str | Path, max_pixels: int, formats: tuple[str, ...] | None) -> ImageHeader:
    with _open(source, name, max_pixels, formats) as im:
        bits = _check_mode(source, name, im)
        width, height = im.size
        if _orientation(im) >= 5:  # orientations 5-8 swap width and height
            width, height = height, width
        return ImageHeader(height=height, width=width, bits=bits, format=im.format or "", mode=im.mode)


def _read(source: Source, name: str | Path, channels: int, max_pixels: int,
          formats: tuple[str, ...] | None) -> np.ndarray:
    _check_channels(channels)
    with _open(source, name, max_pixels, formats) as im:
        bits = _check_mode(source, name, im)
        if bits == 16 and im.mode not in _GRAY16_MODES:
            orientation = _orientation(im)  # eXIf before IDAT only; pypng skips other chunks
            arr = _read_png16(source, name)
        else:
            arr = _decode_with_pillow(name, im)
            orientation = _orientation(im)
    return convert_channels(_orient(arr, orientation), channels)


def read_index_map(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a class- or instance-index map with its values as stored: HxW int32.

    8-bit grey, palette images (their indices, not the palette's colours), 16-bit grey and 32-bit integer PNGs
    keep their values; alpha is dropped; an RGB file whose three channels are equal counts as grey. Other
    colour images are refused: their colours are not class numbers (a colour label map needs a palette).
    EXIF orientation is applied.
    """
    with _open(Path(path), path, max_pixels) as im:
        try:
            im.load()
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as err:
            raise ImageError(path, f"truncated or corrupt image file ({_one_line(err)})") from None
        orientation = _orientation(im)
        mode = im.mode
        if mode in ("LA", "La", "PA"):
            arr = np.asarray(im)[..., 0]
        elif mode in ("1", "L", "P", "I", *_GRAY16_MODES):
            arr = np.asarray(im)
        else:
            rgb = np.asarray(im.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
                raise ImageError(path, f"a colour ({mode}) image, not a class-index map (one class number per "
                                       "pixel); for colour label maps set data.input_palette to their palette")
            arr = rgb[..., 0]
    return _orient(arr.astype(np.int32)[..., None], orientation)[..., 0]


def drop_alpha(arr: np.ndarray) -> np.ndarray:
    """HxW, HxWxC -> HxWx1 or HxWx3: grey+alpha and RGBA lose their alpha, as Pillow's convert('RGB') does."""
    if arr.ndim == 2:
        return arr[:, :, None]
    return arr[..., :-1] if arr.shape[2] in (2, 4) else arr


def convert_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """Convert an HxWx1 or HxWx3 array to ``channels`` channels, keeping its dtype."""
    _check_channels(channels)
    have = arr.shape[2]
    if have == channels:
        return arr
    if have == 1:
        return np.repeat(arr, 3, axis=2)
    if have == 3:
        # Pillow's fixed-point RGB->L (ITU-R 601-2), widened so 16-bit values don't overflow.
        wide = arr.astype(np.uint64 if arr.dtype == np.uint16 else np.uint32)
        luma = (wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) >> 16
        return luma.astype(arr.dtype)[..., None]
    raise ValueError(f"cannot convert {have} channels to {channels}")


def write_image(image: np.ndarray, path: str | Path, overwrite: bool = True) -> Path:
    """Write a uint8/uint16 HxW or HxWxC (C = 1 or 3) array as PNG, atomically.

    The one function that writes generated images, so provenance marking can live in one place.
    Atomic: the PNG goes to a temporary file in the same folder and is then renamed over ``path``,
    so a crash never leaves a half-written image.
    """
    path = Path(path)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype not in (np.uint8, np.uint16) or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ImageError(
            path,
            f"cannot write a {arr.dtype} array of shape {arr.shape}; expected uint8 or uint16, HxW or HxWx3",
        )
    if path.suffix.lower() != ".png":
        raise ImageError(path, "write_image writes PNG only; use a .png name")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists (overwrite=False)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:  # 'x': fresh file with the usual umask-based permissions
            _encode_png(arr, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWxC uint8/uint16 -> float32 CxHxW in [-1, 1], the range the tanh generators produce."""
    scale = _full_scale(arr.dtype)
    t = torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32))  # a copy: inputs may be read-only
    return t.mul_(2.0 / scale).sub_(1.0)


def image_to_tensor(image: Image.Image | np.ndarray, channels: int) -> torch.Tensor:
    """A PIL image or HxW(xC) array -> float32 CxHxW in [-1, 1] with ``channels`` channels, alpha dropped."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a PIL image, numpy array or tensor, got {type(image).__name__}")
    return to_tensor(convert_channels(drop_alpha(image), channels))


def from_tensor(t: torch.Tensor, dtype: type[np.integer] | np.dtype = np.uint8) -> np.ndarray:
    """CxHxW float in [-1, 1] -> HxWxC uint8/uint16, clamped and rounded (exact inverse of to_tensor)."""
    dtype = np.dtype(dtype)
    scale = _full_scale(dtype)
    # numpy in float32: releases the GIL (translate runs this on its writer threads), float32 is exact enough
    # (16-bit values land within 0.01 of an integer), and the result comes out HxWxC-contiguous for encoders.
    chw = t.detach().to("cpu", torch.float32).numpy()
    values = np.clip(chw.transpose(1, 2, 0), -1.0, 1.0, out=np.empty(chw.shape[1:] + chw.shape[:1], np.float32))
    values += 1.0
    values *= scale / 2.0
    return np.rint(values, out=values).astype(dtype)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order (2.jpg before 10.jpg).

    Hidden files are left out: macOS ``._name.jpg`` resource forks look like images but are not.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=_natural_key)


def _natural_key(path: Path) -> tuple[list[int | str], str]:
    # re.split with a group alternates text, number, text...: positions always compare like types.
    parts = re.split(r"(\d+)", path.name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], path.name


@contextmanager
def _open(source: Source, path: str | Path, max_pixels: int,
          formats: tuple[str, ...] | None = None) -> Iterator[Image.Image]:
    """Open lazily (header only) and enforce ``max_pixels`` before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=formats)
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a folder, expected an image file") from None
    except PermissionError:
        raise ImageError(path, "cannot be read (permission denied)") from None
    except Image.DecompressionBombError as err:
        # Pillow's own limit (2x Image.MAX_IMAGE_PIXELS) struck before ours was checked: name the one that applies.
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{found[1]} pixels" if found else "the image"
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        limit = f"max_pixels {max_pixels}" if max_pixels < pillow_limit else f"Pillow's limit of {pillow_limit} pixels"
        raise ImageTooLargeError(path, f"{size} exceeds {limit} (possible decompression bomb)") from None
    except UnidentifiedImageError:
        accepted = f" (accepted: {', '.join(formats)})" if formats else ""
        raise NotAnImageError(path, f"not an image Pillow can read{accepted}") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as err:
        raise CorruptImageError(path, f"truncated or corrupt image file ({_one_line(err)})") from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                path,
                f"{width}x{height} = {width * height} pixels exceeds max_pixels "
                f"{max_pixels} (possible decompression bomb)",
            )
        frames = _frames(path, im)
        # A multi-page TIFF or an animation is not one image; translating its first frame silently would
        # drop the rest. (MPO, a camera JPEG with preview frames, is one picture: its first frame.)
        if frames > 1 and im.format != "MPO":
            raise UnsupportedImageError(path, f"holds {frames} pages or frames; pixforge reads single images "
                                              f"(save the one you want as its own file)")
        yield im


def _frames(path: str | Path, im: Image.Image) -> int:
    try:
        return int(getattr(im, "n_frames", 1))
    except (OSError, ValueError, EOFError, struct.error) as err:
        raise CorruptImageError(path, f"truncated or corrupt image file ({_one_line(err)})") from None


def _check_mode(source: Source, path: str | Path, im: Image.Image) -> int:
    """Refuse modes that cannot become 8/16-bit gray or RGB without guessing; return the bit depth."""
    if im.mode in _NO_FIXED_RANGE:
        raise UnsupportedImageError(
            path,
            f"mode {im.mode!r} ({_NO_FIXED_RANGE[im.mode]}) has no fixed value range, so "
            "it cannot be converted to 8- or 16-bit channels; save it as 8- or 16-bit",
        )
    if im.format == "TIFF" and im.mode not in _GRAY16_MODES:
        bits = im.tag_v2.get(_TIFF_BITS_PER_SAMPLE, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        if max(bits) > 8:
            raise UnsupportedImageError(
                path,
                f"{max(bits)}-bit {im.mode} TIFF: Pillow can only read it reduced to "
                "8 bits; save it as 16-bit PNG to keep the precision",
            )
    if im.mode in _GRAY16_MODES or (im.format == "PNG" and _png16_reduced_by_pillow(source)):
        return 16
    return 8


def _decode_with_pillow(path: str | Path, im: Image.Image) -> np.ndarray:
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as err:
        raise CorruptImageError(path, f"truncated or corrupt image file ({_one_line(err)})") from None
    if im.mode in _GRAY16_MODES:
        return np.asarray(im).astype(np.uint16)[..., None]  # astype: I;16B is big-endian
    if im.mode in _GRAY8_MODES:
        return np.asarray(im.convert("L"))[..., None]
    if im.mode in ("P", "PA"):
        # Via RGBA: Pillow warns when a palette with per-entry transparency goes straight to RGB.
        return np.asarray(im.convert("RGBA"))[..., :3]
    try:
        return np.asarray(im.convert("RGB"))
    except ValueError as err:
        raise UnsupportedImageError(path, f"mode {im.mode!r} cannot be converted to RGB ({_one_line(err)})") \
            from None


def _png16_reduced_by_pillow(source: Source) -> bool:
    """True for 16-bit colour/alpha PNGs, which Pillow would silently decode as 8-bit."""
    if isinstance(source, bytes):
        head = source[:26]
    else:
        with open(source, "rb") as f:
            head = f.read(26)
    is_png = head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) == 26
    return is_png and head[24] == 16 and head[25] in _PNG_COLOR_TYPES_PILLOW_REDUCES


def _read_png16(source: Source, path: str | Path) -> np.ndarray:
    reader = png.Reader(bytes=source) if isinstance(source, bytes) else png.Reader(filename=str(source))
    try:
        width, height, rows, info = reader.asDirect()
        arr = np.array(list(rows), dtype=np.uint16).reshape(height, width, info["planes"])
    except (png.Error, zlib.error, ValueError, EOFError, OSError) as err:
        raise CorruptImageError(path, f"truncated or corrupt image file ({_one_line(err)})") from None
    return drop_alpha(arr)


def _orientation(im: Image.Image) -> int:
    # PNG keeps EXIF in an optional chunk that Pillow finds before IDAT on open, or after load();
    # asking getexif() earlier would decode the whole image just to look for it.
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    return int(im.getexif().get(_EXIF_ORIENTATION, 1))


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an HxWxC array, as ``ImageOps.exif_transpose`` does to an image."""
    transposed = arr.transpose(1, 0, 2)
    match orientation:
        case 2:
            return arr[:, ::-1]
        case 3:
            return arr[::-1, ::-1]
        case 4:
            return arr[::-1]
        case 5:
            return transposed
        case 6:
            return transposed[:, ::-1]
        case 7:
            return transposed[::-1, ::-1]
        case 8:
            return transposed[::-1]
    return arr


def _encode_png(arr: np.ndarray, f: BinaryIO) -> None:
    if arr.dtype == np.uint16 and arr.ndim == 3:  # Pillow has no 16-bit RGB mode
        height, width, _ = arr.shape
        png.Writer(width, height, greyscale=False, bitdepth=16).write(f, arr.reshape(height, width * 3))
    else:
        Image.fromarray(np.ascontiguousarray(arr)).save(f, format="PNG")


def _full_scale(dtype: np.dtype | type) -> float:
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise TypeError(f"expected uint8 or uint16 pixels, got {dtype}")


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {channels}")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
