"""Which size a generator runs an input at, per scale mode (runtime.scale)."""

import pytest
import torch

from pixforge.config import DataConfig
from pixforge.nn.unet import UnetGenerator
from pixforge.runtime.scale import apply_generator, inference_size

FACADES = DataConfig(preprocess="resize_and_crop", load_size=286, crop_size=256, source_size=(256, 256))
MAPS = DataConfig(preprocess="resize_and_crop", load_size=286, crop_size=256, source_size=(600, 600))
UNKNOWN = DataConfig(preprocess="resize_and_crop", load_size=286, crop_size=256)  # imported runs


def test_facades_runs_natively_by_default_a_twelve_percent_change_is_not_worth_4x_the_compute():
    assert inference_size(256, 256, FACADES, "auto", 256) == (256, 256)
    assert inference_size(256, 256, FACADES, "trained", 256) == (286, 286)
    assert inference_size(300, 170, FACADES, "auto", 256) == (300, 170)


def test_maps_tiles_are_brought_to_the_trained_scale_and_snapped_to_the_multiple():
    assert inference_size(600, 600, MAPS, "auto", 256) == (256, 256)  # 286 would pad to 512
    assert inference_size(600, 600, MAPS, "trained", 256) == (286, 286)
    assert inference_size(600, 600, MAPS, "native", 256) == (600, 600)
    assert inference_size(1200, 600, MAPS, "auto", 4) == (572, 288)  # a small multiple: a tiny snap
    assert inference_size(600, 600, MAPS, "auto", 512) == (286, 286)  # 512 would move the scale 79%


def test_reference_mode_is_what_test_py_does():
    assert inference_size(600, 400, MAPS, "reference", 256) == (256, 256)  # squares, as test.py
    width = DataConfig(preprocess="scale_width", load_size=286, crop_size=256)
    assert inference_size(600, 800, width, "reference", 4) == (256, 256)
    assert inference_size(800, 600, width, "reference", 4) == (341, 256)
    none = DataConfig(preprocess="none", load_size=256, crop_size=256)
    assert inference_size(99, 130, none, "reference", 4) == (100, 128)


def test_an_unknown_training_scale_runs_natively_and_trained_mode_says_why_not():
    assert inference_size(600, 600, UNKNOWN, "auto", 256) == (600, 600)
    with pytest.raises(ValueError, match="does not record the size of its training images"):
        inference_size(600, 600, UNKNOWN, "trained", 256)


def test_outputs_come_back_at_the_input_size_whatever_size_the_network_ran_at():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=5, ngf=4).eval()
    x = torch.rand(2, 3, 90, 70) * 2 - 1
    for size in (None, (45, 35), (180, 140), (32, 32)):
        y = apply_generator(net, x, multiple=32, size=size, device=torch.device("cpu"))
        assert y.shape == (2, 3, 90, 70) and y.abs().max() <= 1.0
