"""LPIPS and FID/KID: the code paths with randomly initialised networks saved under the standard file names
and key names (the real weights cannot be downloaded here), and the one-line message when files are missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixforge.eval.inception import FIDInception, fid, inception_features, kid
from pixforge.eval.lpips import LPIPS, lpips_distances
from pixforge.eval.weights import ALEXNET_FILE, FID_INCEPTION_FILE, LPIPS_ALEX_FILE, MissingWeights

# Key names of the standard files (torchvision's alexnet-owt, lpips' v0.1/alex.pth, pytorch-fid's Inception).
ALEXNET_KEYS = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}
LPIPS_KEYS = {f"lin{i}.model.1.weight" for i in range(5)}
INCEPTION_SAMPLE_KEYS = {"Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var",
                         "Mixed_5b.branch5x5_2.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.bias",
                         "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight"}


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Random networks written as the standard files would be: a torchvision-style AlexNet state dict (with
    its classifier keys, which LPIPS ignores), the LPIPS heads, and the FID Inception."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    lp = LPIPS()
    alexnet = {k: v for k, v in lp.state_dict().items() if k.startswith("net.")}
    alexnet = {k.removeprefix("net."): v for k, v in alexnet.items()}
    alexnet["classifier.1.weight"] = torch.zeros(4096, 9216)  # present in the real file, unused
    torch.save(alexnet, folder / ALEXNET_FILE)
    heads = {k: v.abs() for k, v in lp.state_dict().items() if k.startswith("lin")}  # LPIPS heads are >= 0
    torch.save(heads, folder / LPIPS_ALEX_FILE)
    inception = FIDInception()
    state = {k: v for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, folder / FID_INCEPTION_FILE)  # pytorch-fid's file predates num_batches_tracked
    return folder


def test_networks_use_the_standard_key_names():
    lp = LPIPS()
    assert {k.removeprefix("net.") for k in lp.state_dict() if k.startswith("net.")} == ALEXNET_KEYS
    assert {k for k in lp.state_dict() if k.startswith("lin")} == LPIPS_KEYS
    assert lp.state_dict()["lin2.model.1.weight"].shape == (1, 384, 1, 1)
    keys = set(FIDInception().state_dict())
    assert keys >= INCEPTION_SAMPLE_KEYS
    assert not any("Aux" in k for k in keys)
    assert FIDInception().fc.weight.shape == (1008, 2048)


def test_lpips_from_files_is_zero_for_equal_images_and_symmetric(random_weights):
    net = LPIPS.from_files(random_weights)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    same, ab, ba = lpips_distances(net, [a, a, b], [a, b, a])
    assert same == pytest.approx(0, abs=1e-6)
    assert ab > 0 and ab == pytest.approx(ba, rel=1e-5)


def test_inception_features_from_the_file_are_2048_wide_for_any_size(random_weights):
    net = FIDInception.from_file(random_weights)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(3)]
    feats = inception_features(net, images, batch_size=2)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()
    assert np.abs(feats[0] - feats[1]).max() > 1e-3 * np.abs(feats[0]).max()  # depends on the image


def test_fid_and_kid_formulas():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(300, 8))
    assert fid(feats, feats) == pytest.approx(0, abs=1e-6)
    assert fid(feats, feats + 1.0) == pytest.approx(8, rel=1e-6)  # equal covariances: the mean shift alone
    scaled = fid(feats, feats * 2)  # |mu - 2 mu|^2 + tr(S) + tr(4S) - 2 tr(2S)
    expected = (feats.mean(0) ** 2).sum() + np.trace(np.cov(feats, rowvar=False))
    assert scaled == pytest.approx(expected, rel=1e-6)
    shifted = kid(feats[:150], feats[150:] + 1.0)[0]
    same = kid(feats[:150], feats[150:])[0]  # unbiased: near zero (either sign) for one distribution
    assert shifted > 0.1 and abs(same) < shifted / 10


def test_a_missing_weight_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(MissingWeights) as err:
        LPIPS.from_files(tmp_path)
    assert str(err.value) == f"LPIPS skipped: weights not found, expected {tmp_path / ALEXNET_FILE}"
    with pytest.raises(MissingWeights, match=FID_INCEPTION_FILE):
        FIDInception.from_file(tmp_path)


def test_a_file_with_wrong_shapes_is_refused(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / ALEXNET_FILE)
    with pytest.raises(ValueError, match="keys missing"):
        LPIPS.from_files(tmp_path)
