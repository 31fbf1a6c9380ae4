"""An invisible watermark that survives JPEG, resizing and cropping and is read with no hint of the original.

Why pixforge has its own: the kept libraries were measured on this project's machines and none meets the
goals (RESPONSIBLE_USE.md has the details). ``invisible-watermark``'s ``dwtDctSvd`` survives JPEG but
decodes only at the size it was embedded at and refuses images under 256×256; its ``rivaGan`` survives
resizing only partly and costs ~160 ms an image; ``trustmark`` imports torchvision at module level, which
does not work with the CPU torch pixforge pins. Reading a 256² output that was downscaled to 128² and
re-saved as JPEG, or a cropped one, needs scale and offset recovery, which none of them does.

Design (classic tiled spread spectrum, as in Kalker et al.'s periodic watermarks and the "self-reference"
schemes that followed):

* A 128×128 tile is tiled over the luma of the image (the same value is added to R, G and B, so chroma and
  JPEG's chroma subsampling are untouched). The tile lives only in mid spatial frequencies,
  0.05–0.15 cycles per pixel: low enough to survive JPEG 75 even after a 0.5× downscale (they become
  0.1–0.3 cycles/px, DCT indices ≤ 5), high enough that the host image interferes little.
* The tile's frequency bins are split, by a fixed key, between a sync pattern (30% of the energy, known to
  the detector) and 92 code bits (each on its own bins, so they are orthogonal): the 40-bit payload of
  :mod:`pixforge.provenance.payload` after rate-1/2 convolutional coding.
* Strength: 2.8 grey levels RMS (8-bit units; 16-bit images get the same pattern at 16-bit precision),
  which gives PSNR ≈ 39 dB.

Detection of an image of unknown history: for each candidate scale factor on a log grid from 0.45× to
2.3× (1.5% apart) the luma is resampled back to the embedding scale, high-passed and divided by its local
contrast (so textured areas do not drown flat ones), folded modulo the tile (which sums every tile
coherently), whitened in the frequency domain and cross-correlated with the sync pattern by FFT. The
peak's height over the correlation's spread (a z-score) finds scale and offset (any crop), the best
candidates are refined on the full image and decoded, and a mark is *found* only when both the sync
peak clears :data:`THRESHOLD` and the decoded payload passes its 16-bit checksum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from pixforge.provenance import payload

TILE = 128
"""Period of the pattern in pixels at the embedding scale."""
BAND = (0.05, 0.15)
"""Spatial frequencies (cycles per pixel at the embedding scale) that carry the mark."""
SYNC_SHARE = 0.3
"""Fraction of the frequency bins (and so of the energy) given to the sync pattern."""
STRENGTH = 2.8
"""RMS of the added pattern in 8-bit grey levels: PSNR ≈ 39 dB (goal ≥ 38)."""
THRESHOLD = 5.5
"""Sync peak z-score needed for 'found' (with the checksum). After the whole scale search unmarked photos peak
at 4-6 (6.0 at most over 500 facades photos, which the checksum then rejects); marked outputs score 18-20
(pix2pix facades outputs) and 6-12 (busy photos)."""
SCALES = (0.45, 2.3)
"""Range of resize factors (relative to the marked image) the detector searches."""
_SCALE_STEP = 0.015  # log step of the coarse grid: misalignment stays under ~3 px over a 256 px region
_SEARCH_EXTENT = 256  # embedding-scale size of the centre region used for the coarse search
_DECODE_EXTENT = 1024  # ... and for refinement and decoding
_CANDIDATES = 3  # coarse peaks refined and decoded; the checksum picks among them
_KEY = 0x70_69_78_66  # "pixf": seeds the bin layout and phases; a different key is a different mark
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Detection:
    """What the watermark detector read from an image."""

    found: bool
    score: float
    """Sync peak z-score (see :data:`THRESHOLD`)."""
    model_hash_prefix: str | None
    """6 hex digits when found, else None."""
    bit_accuracy: float
    """Share of the 92 raw code bits that agree with the error-corrected payload re-encoded."""
    scale: float
    """Estimated size of the image relative to the marked original (0.5 = downscaled by half)."""
    offset: tuple[int, int]
    bits: tuple[int, ...] = field(repr=False)
    """The 40 decoded payload bits (hash prefix + checksum), found or not."""


# -------------------------------------------------------------------------------------------------
# Embedding


def embed(image: np.ndarray, model_hash: str, strength: float = STRENGTH, informed: bool = True) -> np.ndarray:
    """Return a marked copy of an HxW, HxWx1 or HxWx3 uint8/uint16 image (same shape and dtype).

    The payload is the first 24 bits of ``model_hash`` (hex). The pattern is added to every channel in
    float32 and rounded once, so 16-bit images are marked at 16-bit precision. ``informed`` (default)
    shapes the code bits' amplitudes to this image; see :func:`_informed_amplitudes`.
    """
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16) or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3))):
        raise ValueError(f"image: expected a uint8 or uint16 array of shape HxW, HxWx1 or HxWx3, "
                         f"got {arr.dtype} {arr.shape}")
    prefix = payload.hash_prefix(model_hash)
    full = float(np.iinfo(arr.dtype).max)
    h, w = arr.shape[:2]
    if informed and min(h, w) >= 32:
        tile = _synthesise(prefix, _informed_amplitudes(luma(arr), prefix, strength))
    else:
        tile = _tile(prefix)
    pattern = _tiled(tile, h, w) * np.float32(strength * full / 255.0)
    out = arr.astype(np.float32)
    out += pattern if arr.ndim == 2 else pattern[..., None]
    np.rint(out, out=out)
    np.clip(out, 0.0, full, out=out)
    return out.astype(arr.dtype)


def _tiled(tile: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.tile(tile, (-(-h // TILE), -(-w // TILE)))[:h, :w]


@lru_cache(maxsize=32)
def _tile(prefix: int) -> np.ndarray:
    """The unit-RMS pattern tile for one payload with equal bit amplitudes (cached per model)."""
    tile = _synthesise(prefix, None)
    tile.setflags(write=False)  # shared by every caller through the cache
    return tile


def _synthesise(prefix: int, amplitudes: np.ndarray | None) -> np.ndarray:
    _, bit_bins, phase = _layout()
    coded = payload.encode(payload.info_bits(prefix)).astype(np.float64) * 2 - 1
    if amplitudes is not None:
        coded = coded * amplitudes
    spectrum = _sync_spectrum().copy()
    spectrum[bit_bins[..., 0], bit_bins[..., 1]] = coded[:, None] * phase[bit_bins[..., 0], bit_bins[..., 1]]
    tile = np.fft.irfft2(spectrum, s=(TILE, TILE))
    return (tile / tile.std()).astype(np.float32)


def _informed_amplitudes(y: np.ndarray, prefix: int, strength: float) -> np.ndarray:
    """Per-code-bit amplitudes that cancel the image's own interference (informed embedding).

    A textured image correlates with some code bits by chance, for or against them; that, not JPEG, is
    what flips bits on busy images. The embedder knows the image, so it measures what the detector will
    read for each bit from the image alone (``host``) and per unit of mark (``gain``), then gives bits the
    image works against more amplitude and bits it already supports less, keeping the total energy (and
    so the PSNR) unchanged: water-filling towards an equal margin, amplitudes kept in [0.3, 2.5].
    """
    region = _aligned_region(y, _DECODE_EXTENT)
    signs = payload.encode(payload.info_bits(prefix)).astype(np.float64) * 2 - 1
    host = _bit_soft(_whitened_spectrum(region), (0, 0)) * signs
    marked = region + _tiled(_tile(prefix), *region.shape) * np.float32(strength)
    gain = np.maximum(_bit_soft(_whitened_spectrum(marked), (0, 0)) * signs - host, 1e-9)
    # Bisection on the common margin m (in the detector's soft units): bit i gets (m - host_i) / gain_i.
    low, high = float(host.min()) - 1.0, float((host + 2.5 * gain).max()) + 1.0
    budget = len(signs)  # the sum of squared amplitudes when all are 1
    for _ in range(40):
        margin = (low + high) / 2
        if np.sum(np.clip((margin - host) / gain, 0.3, 2.5) ** 2) > budget:
            high = margin
        else:
            low = margin
    return np.clip((low - host) / gain, 0.3, 2.5)


def _aligned_region(y: np.ndarray, size: int) -> np.ndarray:
    """A centre region of at most ``size`` pixels a side whose corner sits on the tile grid."""
    h, w = y.shape
    top = max(0, (h - size) // 2) // TILE * TILE
    left = max(0, (w - size) // 2) // TILE * TILE
    return y[top:top + size, left:left + size]


@cache
def _layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sync bins, code-bit bins [bit, bin, (row, col)], unit phasors) of the half spectrum, from the key."""
    rng = np.random.default_rng(_KEY)
    radius = np.hypot(np.fft.fftfreq(TILE)[:, None], np.fft.rfftfreq(TILE)[None, :])
    usable = (radius >= BAND[0]) & (radius <= BAND[1])
    usable[:, 0] = usable[:, -1] = False  # those columns are their own mirror images: not independent
    bins = np.argwhere(usable)
    rng.shuffle(bins)
    per_bit = int(len(bins) * (1 - SYNC_SHARE)) // payload.CODED_BITS
    n_sync = len(bins) - per_bit * payload.CODED_BITS
    phase = np.exp(2j * np.pi * rng.random((TILE, TILE // 2 + 1)))
    return bins[:n_sync], bins[n_sync:].reshape(payload.CODED_BITS, per_bit, 2), phase


@cache
def _sync_spectrum() -> np.ndarray:
    sync, _, phase = _layout()
    spectrum = np.zeros((TILE, TILE // 2 + 1), np.complex128)
    spectrum[sync[:, 0], sync[:, 1]] = phase[sync[:, 0], sync[:, 1]]
    return spectrum


# -------------------------------------------------------------------------------------------------
# Detection


def luma(image: np.ndarray) -> np.ndarray:
    """HxW float32 luma in 8-bit units (ITU-R 601 weights) of a uint8/uint16 grey or RGB image."""
    arr = np.asarray(image)
    scale = np.float32(255.0 / np.iinfo(arr.dtype).max) if arr.dtype.kind == "u" else np.float32(1.0)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return arr.astype(np.float32) * scale
    return (arr[..., :3].astype(np.float32) @ _LUMA) * scale


def detect(image: np.ndarray) -> Detection:
    """Look for the mark in an image as the user has it: any scale in :data:`SCALES`, any crop offset."""
    y = luma(image)
    if min(y.shape) < 16:
        return Detection(False, 0.0, None, 0.0, 1.0, (0, 0), tuple([0] * payload.INFO_BITS))
    grid = np.exp(np.arange(np.log(SCALES[0]), np.log(SCALES[1]), _SCALE_STEP))
    coarse = np.array([_sync_peak(_centre(y, _SEARCH_EXTENT * s), s)[0] for s in grid])
    best: Detection | None = None
    for i in _distinct_peaks(coarse, _CANDIDATES, min_gap=2):
        region = _centre(y, _DECODE_EXTENT * grid[i])
        fine = grid[i] * np.exp(np.linspace(-_SCALE_STEP, _SCALE_STEP, 7))
        (z, offset, spectrum), scale = max(((_sync_peak(region, s), s) for s in fine), key=lambda t: t[0][0])
        candidate = _decode(z, offset, spectrum, scale)
        if best is None or (candidate.found, candidate.score) > (best.found, best.score):
            best = candidate
    assert best is not None
    return best


def _centre(y: np.ndarray, size: float) -> np.ndarray:
    n = max(16, round(size))
    h, w = y.shape
    top, left = max(0, (h - n) // 2), max(0, (w - n) // 2)
    return y[top:top + n, left:left + n]


def _distinct_peaks(values: np.ndarray, count: int, min_gap: int) -> list[int]:
    picked: list[int] = []
    for i in np.argsort(values)[::-1]:
        if all(abs(int(i) - j) > min_gap for j in picked):
            picked.append(int(i))
        if len(picked) == count:
            break
    return picked


def _sync_peak(y: np.ndarray, scale: float) -> tuple[float, tuple[int, int], np.ndarray]:
    """(z-score, tile offset, whitened folded spectrum) for the hypothesis 'resized by ``scale``'."""
    import cv2  # ships with the safety filter's dependencies; imported here so marking never loads it

    h, w = y.shape
    if abs(scale - 1.0) > 1e-6:
        size = (max(16, round(w / scale)), max(16, round(h / scale)))
        # Back to the embedding scale: interpolate when enlarging, average when shrinking (no aliasing).
        y = cv2.resize(y, size, interpolation=cv2.INTER_LINEAR if scale < 1 else cv2.INTER_AREA)
    spectrum = _whitened_spectrum(y)
    corr = np.fft.irfft2(spectrum * np.conj(_sync_spectrum()), s=(TILE, TILE))
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
    spread = float(corr.std())
    z = float(corr[peak]) / spread if spread > 0 else 0.0
    return z, (int(peak[0]), int(peak[1])), spectrum


def _whitened_spectrum(y: np.ndarray) -> np.ndarray:
    """The folded residual's spectrum divided by its local power: equal footing for every frequency."""
    spectrum = np.fft.rfft2(_fold(_normalised_residual(y)))
    spectrum /= _smoothed_power(spectrum) + 1e-12
    return spectrum


def _normalised_residual(y: np.ndarray) -> np.ndarray:
    """High-pass (minus a 9×9 mean), divided by the local RMS of that residual (+1.5 levels), clipped at ±3.

    Dividing by local contrast lets flat regions, where the mark stands out, count as much as busy ones;
    the clip keeps edges from dominating.
    """
    import cv2

    residual = y - cv2.blur(y, (9, 9), borderType=cv2.BORDER_REPLICATE)
    local_power = cv2.blur(residual * residual, (17, 17), borderType=cv2.BORDER_REPLICATE)
    residual /= np.sqrt(np.maximum(local_power, 0.0)) + 1.5
    return np.clip(residual, -3.0, 3.0, out=residual)


def _fold(residual: np.ndarray) -> np.ndarray:
    h, w = residual.shape
    padded = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE), np.float32)
    padded[:h, :w] = residual
    return padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))


def _smoothed_power(spectrum: np.ndarray, radius: int = 2) -> np.ndarray:
    """|X|² averaged over a 5×5 neighbourhood of bins (periodic along rows): the local noise floor."""
    power = np.abs(spectrum) ** 2
    padded = np.concatenate([power[-radius:], power, power[:radius]], axis=0)
    padded = np.pad(padded, ((0, 0), (radius, radius)), mode="reflect")
    csum = np.cumsum(np.cumsum(padded, axis=0), axis=1)
    csum = np.pad(csum, ((1, 0), (1, 0)))
    n = 2 * radius + 1
    box = csum[n:, n:] - csum[:-n, n:] - csum[n:, :-n] + csum[:-n, :-n]
    return box / (n * n)


def _bit_soft(spectrum: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Soft value of each code bit (positive: 1) from a whitened spectrum whose tile starts at ``offset``."""
    _, bit_bins, phase = _layout()
    fy, fx = np.fft.fftfreq(TILE)[:, None], np.fft.rfftfreq(TILE)[None, :]
    aligned = spectrum * np.exp(2j * np.pi * (fy * offset[0] + fx * offset[1]))  # undo the crop offset
    rows, cols = bit_bins[..., 0], bit_bins[..., 1]
    return np.real(aligned[rows, cols] * np.conj(phase[rows, cols])).sum(axis=1)


def _decode(z: float, offset: tuple[int, int], spectrum: np.ndarray, scale: float) -> Detection:
    """Decode at the sync peak or a pixel beside it: with a weak peak, noise can move the argmax by one
    pixel. The offset whose best codeword fits the soft values best wins; only that one meets the checksum,
    so looking around costs no false positives."""
    decoded = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            at = ((offset[0] + dy) % TILE, (offset[1] + dx) % TILE)
            soft = _bit_soft(spectrum, at)
            bits, metric = payload.viterbi(soft)
            decoded.append((metric / (np.abs(soft).sum() + 1e-12), at, soft, bits))
    _, at, soft, bits = max(decoded, key=lambda d: d[0])
    prefix, checksum_ok = payload.parse_info(bits)
    agreement = float(np.mean((soft > 0) == (payload.encode(bits) == 1)))
    found = checksum_ok and z >= THRESHOLD
    return Detection(found=found, score=z, model_hash_prefix=payload.prefix_hex(prefix) if found else None,
                     bit_accuracy=agreement, scale=float(scale), offset=at,
                     bits=tuple(int(b) for b in bits))
