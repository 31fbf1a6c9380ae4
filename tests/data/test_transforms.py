"""Specification of the joint transforms (pixforge.data.transforms)."""

from __future__ import annotations

import numpy as np
import pytest

from pixforge.data.transforms import (
    AugmentParams,
    apply_params,
    eval_params,
    prepare,
    resize,
    sample_params,
)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


def _params(seed: int, size_hw: tuple[int, int] = (286, 286)) -> AugmentParams:
    return sample_params(size_hw, "resize_and_crop", 256, True, np.random.default_rng(seed))


def test_resize_and_crop_resizes_to_load_size_then_crops_crop_size(image: np.ndarray) -> None:
    prepared = prepare(image, "resize_and_crop", load_size=286, crop_size=256)
    assert prepared.shape == (286, 286, 3)
    params = sample_params(prepared.shape[:2], "resize_and_crop", 256, True, np.random.default_rng(0))
    assert apply_params(prepared, params, 256).shape == (256, 256, 3)


def test_scale_width_keeps_the_aspect_ratio() -> None:
    wide = np.zeros((200, 400, 3), dtype=np.uint8)
    assert prepare(wide, "scale_width", load_size=300, crop_size=100).shape == (150, 300, 3)


def test_scale_width_never_makes_the_height_smaller_than_crop_size() -> None:
    wide = np.zeros((100, 400, 3), dtype=np.uint8)
    assert prepare(wide, "scale_width_and_crop", load_size=256, crop_size=128).shape == (128, 256, 3)


def test_none_mode_rounds_sizes_to_a_multiple_of_4() -> None:
    odd = np.zeros((101, 254, 1), dtype=np.uint8)
    assert prepare(odd, "none", load_size=286, crop_size=256).shape == (100, 256, 1)
    params = sample_params((100, 256), "none", 256, False, np.random.default_rng(0))
    assert params == AugmentParams(crop=None, flip=False)


def test_crop_mode_leaves_the_stored_size_for_the_crop(image: np.ndarray) -> None:
    assert prepare(image, "crop", load_size=286, crop_size=128) is image
    params = sample_params(image.shape[:2], "crop", 128, False, np.random.default_rng(0))
    assert apply_params(image, params, 128).shape == (128, 128, 3)


def test_same_params_keep_identical_a_and_b_identical(image: np.ndarray) -> None:
    a = prepare(image, "resize_and_crop", 286, 256)
    b = prepare(image.copy(), "resize_and_crop", 286, 256)
    for seed in range(20):
        params = _params(seed)
        np.testing.assert_array_equal(apply_params(a, params, 256), apply_params(b, params, 256))


def test_apply_params_crops_then_mirrors(image: np.ndarray) -> None:
    out = apply_params(image, AugmentParams(crop=(3, 5), flip=True), 100)
    np.testing.assert_array_equal(out, image[3:103, 5:105][:, ::-1])
    assert out.flags["C_CONTIGUOUS"]


def test_same_seed_gives_same_params_and_different_seeds_differ() -> None:
    assert _params(7) == _params(7)
    assert len({_params(seed).crop for seed in range(10)}) > 1


def test_flip_happens_about_half_the_time_and_never_when_disabled() -> None:
    flips = [_params(seed).flip for seed in range(400)]
    assert 150 < sum(flips) < 250
    rngs = [np.random.default_rng(seed) for seed in range(50)]
    assert not any(sample_params((286, 286), "resize_and_crop", 256, False, rng).flip for rng in rngs)


def test_crop_covers_every_valid_position_range() -> None:
    tops = {sample_params((260, 256), "crop", 256, False, np.random.default_rng(s)).crop for s in range(200)}
    assert tops == {(t, 0) for t in range(5)}


def test_eval_params_centre_crop_without_flip() -> None:
    assert eval_params((286, 300), "resize_and_crop", 256) == AugmentParams(crop=(15, 22), flip=False)
    assert eval_params((286, 300), "scale_width", 256) == AugmentParams(crop=None, flip=False)


def test_crop_larger_than_the_image_is_an_error() -> None:
    with pytest.raises(ValueError, match="smaller than crop_size 256"):
        sample_params((200, 300), "crop", 256, True, np.random.default_rng(0))


def test_16bit_resize_keeps_dtype_and_precision() -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64, 1).astype(np.uint16)
    out = prepare(ramp, "resize_and_crop", load_size=128, crop_size=128)
    assert out.dtype == np.uint16
    assert out.shape == (128, 128, 1)
    assert len(np.unique(out)) > 256  # more levels than 8 bits could hold


def test_uint8_resize_matches_per_channel_resize(image: np.ndarray) -> None:
    together = resize(image, 100, 90)
    apart = np.concatenate([resize(image[..., c : c + 1], 100, 90) for c in range(3)], axis=2)
    np.testing.assert_array_equal(together, apart)
