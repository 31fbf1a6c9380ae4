"""The benchmarks themselves run and report honestly (tiny sizes; the real figures live in BENCHMARKS.md)."""

import pytest

from pixforge.bench.report import append_markdown, render_markdown
from pixforge.bench.train import bench_train
from pixforge.bench.translate import bench_translate

TINY = {"model": {"generator": "unet_64", "ngf": 8, "ndf": 8}, "data": {"load_size": 72, "crop_size": 64,
                                                                        "max_items": 16}}


@pytest.mark.slow
def test_train_bench_times_whole_processes_and_reports_ratios(facades, tmp_path):
    rows = bench_train(facades, steps=20, overrides=TINY)
    assert [r.mode for r in rows] == ["baseline", "pixforge"]
    assert rows[0].ratio == 1.0 and rows[1].ratio > 0
    assert all(r.value > 0 and r.unit == "s whole process" and r.extra["s/step (own log)"] > 0 for r in rows)
    assert "no flags" in rows[1].detail and "precision" in rows[1].detail  # what auto resolved to
    path = tmp_path / "B.md"
    append_markdown(path, render_markdown("train", rows, command="pixforge bench train"))
    text = path.read_text()
    for needle in ("- date: ", "- machine: ", "- torch ", "- command: `pixforge bench train`", "| train | baseline |"):
        assert needle in text


@pytest.mark.slow
def test_translate_bench_times_whole_processes(facades):
    rows = bench_translate(facades, count=8, passes=1, modes=("baseline", "pixforge"))
    assert [r.mode for r in rows] == ["baseline", "pixforge"]
    assert rows[0].ratio == 1.0 and all(r.value > 0 for r in rows)
