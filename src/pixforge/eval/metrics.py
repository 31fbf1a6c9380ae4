"""Image-quality numbers computed from pixels alone (no learned weights).

Inputs are HxW or HxWxC uint8 arrays (or float arrays in the same 0-255 range).
"""

from __future__ import annotations

import numpy as np

STRIDE_DIVISORS = (2, 4, 8, 16)
"""Checkerboard periods in pixels: the strides of one to four stacked stride-2 transposed convolutions."""


def grey(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as float64 (Pillow's ``convert('L')`` weights, without its rounding)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] >= 3:
        return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    return a[..., 0] if a.ndim == 3 else a


def checkerboard_energy(image: np.ndarray) -> float:
    """Share of an image's power at the stride frequencies, x 10^4 (Odena et al. 2016's artefact, measured).

    Transposed convolutions of stride 2 leave periodic patterns of period 2, 4, 8, 16 pixels. For an HxW grey
    image with its mean removed, this sums the power spectrum at (H/k, 0), (0, W/k), (H/k, W/k) and
    (H/k, -W/k) for k in 2, 4, 8, 16 (the axes and both diagonals), each conjugate pair counted once, and
    divides by the total power. Real facades photos score about 21-25 (JPEG's own 8x8 blocks contribute);
    outputs with a visible grid score several times that.
    """
    g = grey(image)
    g = g - g.mean()
    power = np.abs(np.fft.fft2(g)) ** 2
    total = power.sum()
    if total == 0:
        return 0.0
    h, w = g.shape
    points: set[tuple[int, int]] = set()
    for k in STRIDE_DIVISORS:
        if h % k == 0 and w % k == 0:
            u, v = h // k, w // k
            points.update({(u, 0), (0, v), (u, v), (u, (-v) % w)})
    return float(sum(power[p] for p in points) / total * 1e4)


def mean_abs_error(output: np.ndarray, target: np.ndarray) -> float:
    """Mean |output - target| in the networks' [-1, 1] units (so 0.1 is 12.75 grey levels)."""
    a, b = np.asarray(output, np.float64), np.asarray(target, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"output {a.shape} and target {b.shape} differ in shape")
    return float(np.abs(a - b).mean() / 127.5)


def _same_shape(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(output), np.asarray(target)
    if a.shape != b.shape:
        raise ValueError(f"output {a.shape} and target {b.shape} differ in shape")
    return a, b


def _full_scale(image: np.ndarray) -> float:
    """The value range of an image's dtype: 255 for 8-bit, 65535 for 16-bit (and 0-255 floats)."""
    return 65535.0 if image.dtype == np.uint16 else 255.0


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels; inf for identical images."""
    a, b = _same_shape(output, target)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(_full_scale(a) ** 2 / mse))


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) as the paper defines it: an 11x11 Gaussian window of sigma 1.5,
    population statistics, K1 = 0.01, K2 = 0.03; the mean over colour channels (scikit-image computes it)."""
    from skimage.metrics import structural_similarity  # scipy-heavy import: only when asked for

    a, b = _same_shape(output, target)
    if a.ndim == 3 and a.shape[2] == 1:
        a, b = a[..., 0], b[..., 0]
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=_full_scale(a),
                                       channel_axis=2 if a.ndim == 3 else None, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))
