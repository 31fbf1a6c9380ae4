"""The CUT benchmark harness, on tiny models (the real run is `pixforge bench cut`).

The authors' own train.py runs only where a checkout is named: PIXFORGE_CUT_REFERENCE=DIR (made by
benchmarks/setup_reference.sh --cut; its Python is DIR/venv/bin/python)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixforge.bench.cut import bench_cut

TINY = {"model": {"ngf": 4, "ndf": 4, "num_patches": 16}, "data": {"load_size": 36, "crop_size": 32}}
TINY_AUTHORS = ["--ngf", "4", "--ndf", "4", "--num_patches", "16", "--load_size", "36", "--crop_size", "32"]
AUTHORS = os.environ.get("PIXFORGE_CUT_REFERENCE")


def test_unknown_modes_and_a_checkout_without_train_py_are_named(unpaired_dataset, tmp_path):
    with pytest.raises(ValueError, match="--modes: pixforge-cyclegun unknown"):
        bench_cut(unpaired_dataset, (1, 2), modes=("pixforge-cyclegun",))
    with pytest.raises(ValueError, match="no train.py; expected a contrastive-unpaired-translation checkout"):
        bench_cut(unpaired_dataset, (1, 2), reference=tmp_path)


@pytest.mark.slow
def test_each_preset_runs_twice_and_cyclegan_is_compared_with_fastcut(unpaired_dataset):
    rows = bench_cut(unpaired_dataset, (1, 3), modes=("pixforge-fastcut", "pixforge-cyclegan"),
                     overrides={"model": {"ngf": 4, "ndf": 4}, "data": TINY["data"]})
    fast, cycle = rows
    assert (fast.mode, cycle.mode) == ("pixforge-fastcut", "pixforge-cyclegan")
    assert "--config horse2zebra_fastcut" in fast.detail and "--config horse2zebra," in cycle.detail
    assert fast.ratio is None and cycle.extra["vs"] == "pixforge-fastcut"
    if fast.value > 0 and cycle.value > 0:  # tiny models: start-up noise can outweigh 2 iterations
        assert cycle.ratio == pytest.approx(fast.value / cycle.value)


@pytest.mark.slow
@pytest.mark.skipif(not AUTHORS, reason="no CUT checkout: set PIXFORGE_CUT_REFERENCE=DIR "
                                        "(benchmarks/setup_reference.sh --cut makes one)")
def test_the_authors_modes_run_their_train_py_for_exactly_n_iterations(unpaired_dataset):
    rows = bench_cut(unpaired_dataset, (1, 3), Path(AUTHORS or ""),
                     modes=("authors-cut", "authors-fastcut", "pixforge-fastcut"), overrides=TINY,
                     reference_args=TINY_AUTHORS)
    assert [r.mode for r in rows] == ["authors-cut", "authors-fastcut", "pixforge-fastcut"]
    assert "--CUT_mode FastCUT" in rows[1].detail and rows[2].extra["vs"] == "authors-fastcut"
    assert all(r.extra["peak RSS MB"] > 100 for r in rows)
