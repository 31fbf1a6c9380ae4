"""Pixel metrics against their definitions, and the FCN scores against a hand-made confusion matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixforge.eval.metrics import mean_abs_error, psnr, ssim
from pixforge.nn.segmentation import confusion_matrix, segmentation_scores


def test_psnr_matches_its_definition_and_is_infinite_for_equal_images():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # one error of 10 among 192 values: MSE = 100 / 192
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 192)))
    assert psnr(a, a) == math.inf
    assert psnr(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257) == pytest.approx(psnr(a, b))


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    noisy = [np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (5, 20, 60)]
    scores = [ssim(a, n) for n in noisy]
    assert ssim(a, a) == pytest.approx(1.0)
    assert scores[0] > scores[1] > scores[2] > 0
    assert ssim(a[..., :1], noisy[0][..., :1]) < 1  # one channel works too


def test_l1_is_in_generator_units():
    assert mean_abs_error(np.zeros((4, 4, 3)), np.full((4, 4, 3), 255)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_fcn_scores_from_a_confusion_matrix():
    truth = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    cm = confusion_matrix(truth, predicted, 4)  # class 3 appears nowhere
    assert cm.tolist() == [[3, 1, 0, 0], [0, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    scores = segmentation_scores(cm)
    assert scores["pixel_acc"] == pytest.approx(6 / 8)
    assert scores["class_acc"] == pytest.approx((3 / 4 + 2 / 2 + 1 / 2) / 3)
    assert scores["iou"] == pytest.approx((3 / 4 + 2 / 4 + 1 / 2) / 3)
