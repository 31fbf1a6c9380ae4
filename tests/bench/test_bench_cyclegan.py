"""The CycleGAN benchmark harness, on tiny models (the real run is `pixforge bench cyclegan`).

The reference's own train.py runs only where a checkout is named: PIXFORGE_REFERENCE=DIR (made by
benchmarks/setup_reference.sh; its Python is DIR/venv/bin/python unless PIXFORGE_REFERENCE_PYTHON says)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pixforge import cli
from pixforge.bench import cyclegan
from pixforge.bench.child import ProcessRun
from pixforge.bench.cyclegan import Measured, bench_cyclegan, parse_steps

TINY = {"model": {"generator": "resnet_6blocks", "ngf": 4, "ndf": 4}, "data": {"load_size": 36, "crop_size": 32}}
TINY_REFERENCE = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36", "--crop_size", "32"]
REFERENCE = os.environ.get("PIXFORGE_REFERENCE")


@pytest.mark.parametrize("text", ["5", "8,3", "0,4", "4,4", "a,b", "1,2,3"])
def test_steps_must_be_two_increasing_counts(text):
    with pytest.raises(ValueError, match=rf"--steps '{text}': expected"):
        parse_steps(text)


def test_a_bad_steps_option_is_one_line_before_anything_runs(capsys, tmp_path):
    argv, sys.argv = sys.argv, ["pixforge", "bench", "cyclegan", "--data", str(tmp_path), "--steps", "12,4"]
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main()
    finally:
        sys.argv = argv
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1
    assert err == "error: --steps '12,4': expected 0 < first < second, e.g. 4,12"


def _fake_runs(monkeypatch, checkout: Path) -> None:
    """Whole processes that take 10 s + 2 s per iteration (pixforge) and 20 s + 6 s (the reference)."""
    def run(wall: float, cpu: float, rss: float) -> Measured:
        return Measured(ProcessRun(wall_s=wall, cpu_s=cpu, peak_rss_mb=rss), tree_mb=rss * 1.5)

    monkeypatch.setattr(cyclegan, "run_pixforge", lambda data, n, work, extra: (
        run(10 + 2 * n, 15 + 3 * n, 1000 + n), "precision bf16, channels_last True"))
    monkeypatch.setattr(cyclegan, "run_reference", lambda data, n, work, ref, py, extra: run(20 + 6 * n, 40 + 9 * n,
                                                                                          3000 + n))
    (checkout / "train.py").write_text("")


def test_seconds_per_iteration_is_the_difference_of_two_runs_over_their_step_difference(monkeypatch, tmp_path):
    _fake_runs(monkeypatch, tmp_path)
    reference, pixforge = bench_cyclegan(tmp_path, (4, 12), reference=tmp_path, reference_python=Path(sys.executable))
    assert [r.mode for r in (reference, pixforge)] == ["reference", "pixforge"]
    assert (reference.value, pixforge.value) == (pytest.approx(6.0), pytest.approx(2.0))  # start-up cancels
    assert (reference.ratio, pixforge.ratio) == (pytest.approx(1.0), pytest.approx(3.0))
    assert pixforge.extra == {"CPU s/iteration": 3.0, "peak RSS MB": 1012, "peak tree MB": 1518,
                              "wall s (4 / 12 it)": "18.0 / 34.0"}  # the larger run's memory
    assert reference.extra["CPU s/iteration"] == 9.0 and reference.extra["peak RSS MB"] == 3012
    assert "no flags" in pixforge.detail and "precision bf16" in pixforge.detail
    assert all(r.bench == "cyclegan" and r.unit == "s/iteration" for r in (reference, pixforge))


@pytest.mark.slow
def test_harness_times_two_whole_pixforge_processes(unpaired_dataset):
    (row,) = bench_cyclegan(unpaired_dataset, (1, 3), overrides=TINY)
    assert (row.bench, row.mode, row.unit, row.ratio) == ("cyclegan", "pixforge", "s/iteration", None)
    first, second = (float(x) for x in row.extra["wall s (1 / 3 it)"].split(" / "))
    assert row.value == pytest.approx((second - first) / 2, abs=0.06)  # the difference, not a whole run
    assert row.extra["peak RSS MB"] > 100 and row.extra["peak tree MB"] > 100  # torch alone is more
    assert isinstance(row.extra["CPU s/iteration"], float)
    assert "resolved: precision" in row.detail


def test_a_reference_checkout_needs_train_py_and_its_python(unpaired_dataset, tmp_path):
    with pytest.raises(ValueError, match="no train.py; expected a pytorch-CycleGAN-and-pix2pix checkout"):
        bench_cyclegan(unpaired_dataset, (1, 2), reference=tmp_path)
    (tmp_path / "train.py").write_text("")
    with pytest.raises(ValueError, match="--reference needs --reference-python"):
        bench_cyclegan(unpaired_dataset, (1, 2), reference=tmp_path)


def _reference() -> tuple[Path, Path]:
    checkout = Path(REFERENCE or "")
    return checkout, Path(os.environ.get("PIXFORGE_REFERENCE_PYTHON", checkout / "venv" / "bin" / "python"))


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE, reason="no reference checkout: set PIXFORGE_REFERENCE=DIR "
                                          "(benchmarks/setup_reference.sh makes one)")
def test_the_reference_mode_runs_its_train_py_for_exactly_n_iterations(unpaired_dataset):
    checkout, python = _reference()
    reference, pixforge = bench_cyclegan(unpaired_dataset, (1, 3), checkout, python, overrides=TINY,
                                         reference_args=TINY_REFERENCE)
    assert [reference.mode, reference.unit] == ["reference", "s/iteration"]
    assert "--model cycle_gan" in reference.detail and isinstance(reference.extra["CPU s/iteration"], float)
    assert reference.extra["peak RSS MB"] > 100 and reference.extra["peak tree MB"] > 100
    if reference.value > 0 and pixforge.value > 0:  # tiny models: start-up noise can outweigh 2 iterations
        assert pixforge.ratio == pytest.approx(reference.value / pixforge.value)
    # trainB holds 4 images, trainA 6: with --max_dataset_size 7 the reference's epoch is 6 iterations
    with pytest.raises(ValueError, match="the reference trained 6 iterations, not 7"):
        bench_cyclegan(unpaired_dataset, (1, 7), checkout, python, reference_args=TINY_REFERENCE)
