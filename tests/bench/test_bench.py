"""The benchmarks themselves run and report honestly (tiny sizes; the real figures live in BENCHMARKS.md)."""

import pytest

from pixforge.bench.report import append_markdown, render_markdown
from pixforge.bench.train import bench_train
from pixforge.bench.translate import bench_translate


@pytest.mark.slow
def test_train_bench_runs_both_modes_and_reports_ratio_and_quality(stripes_dataset, tmp_path):
    rows = bench_train(stripes_dataset, steps=20, size=64, quality=True)
    assert [r.mode for r in rows] == ["baseline", "pixforge"]
    assert rows[0].ratio == 1.0 and rows[1].ratio > 0
    assert all(r.value > 0 and r.extra["peak RSS MB"] > 0 and 0 < r.extra["val L1 @20"] < 2 for r in rows)
    path = tmp_path / "B.md"
    append_markdown(path, render_markdown("train", rows, command="pixforge bench train"))
    text = path.read_text()
    for needle in ("- date: ", "- machine: ", "- torch ", "- command: `pixforge bench train`", "| train | baseline |"):
        assert needle in text


@pytest.mark.slow
def test_translate_bench_times_baseline_torch_and_onnx(facades):
    rows = bench_translate(facades, count=8, passes=1)
    assert [r.mode for r in rows] == ["baseline", "pixforge-torch-b1", "pixforge-torch", "pixforge-onnx"]
    assert rows[0].ratio == 1.0 and all(r.value > 0 for r in rows)
