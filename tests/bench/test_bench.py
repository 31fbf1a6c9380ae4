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


@pytest.mark.slow
def test_hd_bench_runs_pix2pixhd_and_spade_as_whole_processes(facades):
    from pixforge.bench.hd import bench_hd

    tiny = {"model": {"ngf": 4, "ndf": 4, "n_blocks_global": 1, "spade_hidden": 8},
            "data": {"load_size": 64, "crop_size": 64}}
    rows = bench_hd(facades, steps=8, overrides=tiny)
    assert [r.mode for r in rows] == ["baseline", "pixforge", "spade"]
    assert rows[0].ratio == 1.0 and all(r.value > 0 and r.unit == "s/step" for r in rows)
    assert all(r.extra["peak RSS MB"] > 100 and r.extra["whole process s"] > 0 for r in rows)
    assert "facades_spade" in rows[2].detail


@pytest.mark.slow
def test_serve_bench_measures_each_mode_and_client_count_without_errors(tmp_path):
    import torch

    from pixforge.bench.serve import bench_serve
    from pixforge.config import config_from_dict
    from pixforge.nn.build import build_generator
    from pixforge.runtime.checkpoint import save_checkpoint

    cfg = config_from_dict({"name": "tiny", "model": {"generator": "unet_64", "ngf": 8},
                            "data": {"crop_size": 64, "load_size": 64}})
    torch.manual_seed(0)
    model = save_checkpoint(tmp_path / "tiny.safetensors", cfg.to_dict(), {"G": build_generator(cfg).state_dict()})
    rows = bench_serve(requests=6, clients=(1, 3), modes=("torch-batched", "torch-per-request", "onnx-batched"),
                       rss_requests=20, model=model, size=64)
    serve_rows = [r for r in rows if r.bench == "serve"]
    assert [(r.mode, r.extra["clients"]) for r in serve_rows] == [
        (m, n) for n in (1, 3) for m in ("torch-batched", "torch-per-request", "onnx-batched")]
    assert all(r.value > 0 and r.extra["errors"] == 0 and r.extra["p99 ms"] >= r.extra["p50 ms"] > 0
               for r in serve_rows)
    assert all(r.ratio == 1.0 for r in serve_rows if r.mode == "torch-per-request")
    assert all("× best unbatched" in r.extra for r in serve_rows if "batched" in r.mode)
    (memory,) = [r for r in rows if r.bench == "serve-memory"]
    assert memory.extra["errors"] == 0 and memory.extra["RSS at end MB"] > 0
