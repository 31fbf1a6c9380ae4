"""The CycleGAN benchmark harness, on a tiny model (the real run is `pixforge bench cyclegan`)."""

from __future__ import annotations

import pytest

from pixforge.bench.cyclegan import bench_cyclegan, parse_steps


@pytest.mark.parametrize("text", ["5", "8,3", "0,4", "a,b", "1,2,3"])
def test_steps_must_be_two_increasing_counts(text):
    with pytest.raises(ValueError, match=rf"--steps '{text}': expected"):
        parse_steps(text)


def test_harness_reports_seconds_per_iteration_from_two_whole_processes(unpaired_dataset):
    tiny = {"model": {"generator": "resnet_6blocks", "ngf": 4, "ndf": 4}, "data": {"load_size": 36, "crop_size": 32}}
    (row,) = bench_cyclegan(unpaired_dataset, (1, 3), overrides=tiny)
    assert (row.bench, row.mode, row.unit) == ("cyclegan", "pixforge", "s/iteration")
    first, second = (float(x) for x in row.extra["wall s (1 / 3 it)"].split(" / "))
    assert row.value == pytest.approx((second - first) / 2, abs=0.06)  # the difference, not a whole run
    assert row.extra["peak RSS MB"] > 100  # torch alone is more


def test_a_reference_checkout_needs_its_python(unpaired_dataset, tmp_path):
    with pytest.raises(ValueError, match="--reference needs --reference-python"):
        bench_cyclegan(unpaired_dataset, (1, 2), reference=tmp_path)
