"""Provenance benchmark: how well the watermark survives, how often it fires on real photos, what it costs.

Quality (may be measured on a busy machine): pix2pix facades outputs (256², the reference fixture
translating the 100 val label maps) are marked and then attacked - PNG, JPEG 90/75/50, resize 0.5× and 2×,
a 10% crop, and each of those three with JPEG 75 - and read back with no hint of the original size.
Detection = found (sync peak over threshold and checksum valid); bit accuracy = the 40 decoded payload bits
against those embedded. The same table on marked real facades photos stands in for the textured outputs of
a well-trained model. False positives: verify's watermark verdict on the 500 real facades photos, unmarked.
Speed (quiet machine only): the per-image cost of the safety filter plus marking.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image

from pixforge.bench.report import Row

REFERENCE_FIXTURE = Path("fixtures/reference-pix2pix/p2p_unet256_ngf16")
"""Relative to the shared folder: the reference pix2pix checkpoint that makes the generated outputs."""

Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _codec(image: np.ndarray, fmt: str, **options: object) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _jpeg(quality: int) -> Attack:
    return lambda image, rng: _codec(image, "JPEG", quality=quality)


def _resize(factor: float) -> Attack:
    def attack(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]  # Pillow's default filter (bicubic, antialiased when shrinking)
        return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor))))
    return attack


def _crop(fraction: float) -> Attack:
    def attack(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]  # keep a (1 - fraction) window of each side at a random position
        ch, cw = round(h * (1 - fraction)), round(w * (1 - fraction))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return image[top:top + ch, left:left + cw]
    return attack


def _then(first: Attack, second: Attack) -> Attack:
    return lambda image, rng: second(first(image, rng), rng)


ATTACKS: dict[str, Attack] = {
    "PNG": lambda image, rng: _codec(image, "PNG"),
    "JPEG 90": _jpeg(90),
    "JPEG 75": _jpeg(75),
    "JPEG 50": _jpeg(50),
    "resize 0.5×": _resize(0.5),
    "resize 2×": _resize(2.0),
    "crop 10%": _crop(0.1),
    "resize 0.5× + JPEG 75": _then(_resize(0.5), _jpeg(75)),
    "resize 2× + JPEG 75": _then(_resize(2.0), _jpeg(75)),
    "crop 10% + JPEG 75": _then(_crop(0.1), _jpeg(75)),
}
"""What a user or a platform does to an image; verified at the size and offset the attack leaves."""


def generated_outputs(facades: Path, shared: Path, count: int = 100) -> list[np.ndarray]:
    """The reference fixture's 256² translations (fp32) of the first ``count`` facades val label maps."""
    from pixforge.data.image_io import list_images
    from pixforge.infer.translator import Translator

    translator = Translator.from_reference(shared / REFERENCE_FIXTURE, device="cpu", precision="fp32")
    labels = []
    for source in list_images(facades / "val")[:count]:
        with Image.open(source) as im:
            rgb = im.convert("RGB")
            label = rgb.crop((rgb.width // 2, 0, rgb.width, rgb.height)).resize((256, 256), Image.BICUBIC)
            labels.append(np.asarray(label))
    return translator.predict_batch(labels)


def real_photos(facades: Path, count: int | None = None) -> list[np.ndarray]:
    """The photo halves (left) of facades train + val: 500 real, unmarked photos."""
    from pixforge.data.image_io import list_images

    photos = []
    for split in ("train", "val"):
        for source in list_images(facades / split):
            with Image.open(source) as im:
                rgb = im.convert("RGB")
                photos.append(np.asarray(rgb.crop((0, 0, rgb.width // 2, rgb.height))))
    return photos[:count]


def robustness_rows(images: list[np.ndarray], label: str, attacks: dict[str, Attack] | None = None,
                    seed: int = 0) -> list[Row]:
    """Mark each image (a different model hash per image), attack it, detect; one row per attack."""
    from pixforge.provenance import payload, watermark

    rng = np.random.default_rng(seed)
    attacks = attacks or ATTACKS
    found: dict[str, list[bool]] = {name: [] for name in attacks}
    accuracy: dict[str, list[float]] = {name: [] for name in attacks}
    scores: dict[str, list[float]] = {name: [] for name in attacks}
    for i, image in enumerate(images):
        model_hash = hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest()
        truth = payload.info_bits(payload.hash_prefix(model_hash))
        marked = watermark.embed(image, model_hash)
        for name, attack in attacks.items():
            result = watermark.detect(attack(marked, rng))
            found[name].append(result.found and result.model_hash_prefix == model_hash[:6])
            accuracy[name].append(float(np.mean(np.array(result.bits) == truth)))
            scores[name].append(result.score)
    return [Row("provenance", f"{label}: {name}", f"{len(images)} images, marked then {name}",
                100.0 * float(np.mean(found[name])), "% detected",
                extra={"bit accuracy": f"{100 * np.mean(accuracy[name]):.1f}%",
                       "median score": f"{median(scores[name]):.1f}"})
            for name in attacks]


def false_positive_row(photos: list[np.ndarray]) -> Row:
    """How many unmarked real photos the detector calls marked (goal: 0)."""
    from pixforge.provenance import watermark

    results = [watermark.detect(photo) for photo in photos]
    hits = sum(r.found for r in results)
    scores = [r.score for r in results]
    return Row("provenance", "false positives: real photos", f"{len(photos)} unmarked facades photos",
               float(hits), f"of {len(photos)}",
               extra={"median score": f"{median(scores):.1f}", "max score": f"{max(scores):.1f}"})


def psnr_row(images: list[np.ndarray], label: str) -> Row:
    """PSNR of marked against unmarked (goal: ≥ 38 dB); the worst image is reported beside the mean."""
    from pixforge.provenance import watermark

    values = []
    for i, image in enumerate(images):
        marked = watermark.embed(image, hashlib.sha256(f"psnr-{i}".encode()).hexdigest())
        mse = float(np.mean((marked.astype(np.float64) - image.astype(np.float64)) ** 2))
        values.append(10 * np.log10(255.0 ** 2 / mse))
    return Row("provenance", f"{label}: PSNR marked vs unmarked", f"{len(images)} images", float(np.mean(values)),
               "dB", extra={"worst image": f"{min(values):.2f} dB"})


def overhead_row(images: list[np.ndarray], repeats: int = 3) -> Row:
    """Milliseconds per image for the safety filter plus the watermark (the PNG encode existed before).

    The detector is loaded and the pattern computed before timing, as in a running translate or server.
    Median over ``repeats`` passes of the per-image mean. Needs a quiet machine.
    """
    from pixforge.provenance import DEFAULT_SAFETY_FILTER, watermark

    model_hash = hashlib.sha256(b"overhead").hexdigest()
    DEFAULT_SAFETY_FILTER.findings(images[0])
    watermark.embed(images[0], model_hash)
    filter_ms, mark_ms = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            DEFAULT_SAFETY_FILTER.findings(image)
        filter_ms.append((time.perf_counter() - start) * 1000 / len(images))
        start = time.perf_counter()
        for image in images:
            watermark.embed(image, model_hash)
        mark_ms.append((time.perf_counter() - start) * 1000 / len(images))
    total = median(filter_ms) + median(mark_ms)
    return Row("provenance", "mark + filter", f"{len(images)} images of 256², median of {repeats} passes",
               total, "ms/image", extra={"filter ms": f"{median(filter_ms):.1f}", "mark ms": f"{median(mark_ms):.1f}"})


def bench_provenance(facades: Path, shared: Path, count: int = 100, photos: int = 100, quality: bool = True,
                     overhead: bool = True, false_positive_photos: int | None = None) -> list[Row]:
    """All rows: robustness on generated outputs and on real photos, false positives (on all 500 photos
    unless ``false_positive_photos`` says fewer), PSNR, overhead."""
    generated = generated_outputs(facades, shared, count)
    rows: list[Row] = []
    if quality:
        real = real_photos(facades)
        rows += robustness_rows(generated, "generated")
        if photos:
            rows += robustness_rows(real[:photos], "photos")
        rows.append(false_positive_row(real[:false_positive_photos]))
        rows.append(psnr_row(generated, "generated"))
        if photos:
            rows.append(psnr_row(real[:photos], "photos"))
    if overhead:
        rows.append(overhead_row(generated))
    return rows
