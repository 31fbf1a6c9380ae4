"""The watermark: invisible (PSNR >= 38 dB), read back after JPEG, resizing and cropping with no hint of the
original size, and silent on unmarked images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pixforge.provenance import watermark


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor))))


def _psnr(a: np.ndarray, b: np.ndarray, full: float = 255.0) -> float:
    return 10 * np.log10(full ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


ATTACKS = {
    "png": lambda m: m,
    "jpeg 75": lambda m: _jpeg(m, 75),
    "downscaled to 128 + jpeg 75": lambda m: _jpeg(_resize(m, 0.5), 75),
    "upscaled 2x": lambda m: _resize(m, 2.0),
    "10% cropped at an odd offset + jpeg 75": lambda m: _jpeg(m[13:13 + 230, 7:7 + 230], 75),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_mark_is_read_back_with_its_model_hash_after(attack, rendering, model_hash):
    marked = watermark.embed(rendering, model_hash)
    found = watermark.detect(ATTACKS[attack](marked))
    assert found.found, found
    assert found.model_hash_prefix == model_hash[:6]
    assert found.bit_accuracy > 0.9


def test_scale_is_estimated_from_the_image_alone(rendering, model_hash):
    marked = watermark.embed(rendering, model_hash)
    assert watermark.detect(_resize(marked, 0.5)).scale == pytest.approx(0.5, rel=0.03)
    assert watermark.detect(_resize(marked, 2.0)).scale == pytest.approx(2.0, rel=0.03)


def test_mark_keeps_psnr_at_least_38_db(rendering, model_hash):
    marked = watermark.embed(rendering, model_hash)
    assert marked.dtype == np.uint8 and marked.shape == rendering.shape
    assert _psnr(marked, rendering) >= 38.0


def test_sixteen_bit_images_are_marked_at_sixteen_bit_precision(procedural, model_hash):
    deep = procedural(1).astype(np.uint16) * 257 + np.uint16(100)
    marked = watermark.embed(deep, model_hash)
    assert marked.dtype == np.uint16
    change = marked.astype(np.int64) - deep.astype(np.int64)
    assert np.mean(change % 257 != 0) > 0.9  # not an 8-bit pattern scaled up
    assert _psnr(marked, deep, 65535.0) >= 38.0
    assert watermark.detect(marked).model_hash_prefix == model_hash[:6]


@pytest.mark.parametrize("shape", [(256, 256), (256, 256, 1)])
def test_grey_images_are_marked_in_their_one_channel(shape, procedural, model_hash):
    grey = procedural(2)[..., 1].reshape(shape)
    marked = watermark.embed(grey, model_hash)
    assert marked.shape == shape
    assert watermark.detect(marked).found


def test_a_smooth_128_pixel_output_carries_the_mark_at_its_own_size(procedural, model_hash):
    small = Image.fromarray(procedural(3)).resize((128, 128), Image.BOX)
    smooth = np.asarray(small.filter(ImageFilter.GaussianBlur(2)))
    assert watermark.detect(watermark.embed(smooth, model_hash)).found


def test_unmarked_images_are_not_found(rendering, procedural):
    for image in (rendering, procedural(4), np.full((300, 200, 3), 128, np.uint8), np.zeros((8, 8), np.uint8)):
        result = watermark.detect(image)
        assert not result.found and result.model_hash_prefix is None


@pytest.mark.slow
def test_real_photos_give_no_false_positive_and_marked_ones_are_found(facades_photos, model_hash):
    for photo in facades_photos:
        assert not watermark.detect(photo).found
    found = [watermark.detect(_jpeg(watermark.embed(p, model_hash), 75)).found for p in facades_photos[:6]]
    assert sum(found) >= 5  # busy photos are the hard case; see the benchmark for rates


def test_other_arrays_are_refused_naming_what_was_expected(model_hash):
    with pytest.raises(ValueError, match="uint8 or uint16"):
        watermark.embed(np.zeros((16, 16, 3), np.float32), model_hash)
    with pytest.raises(ValueError, match="HxW, HxWx1 or HxWx3"):
        watermark.embed(np.zeros((16, 16, 4), np.uint8), model_hash)
