"""The HTML results page: images on disk that it references, inline SVG charts, escaped text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from pixforge.eval.report import loss_curve_svg, write_results_page
from pixforge.provenance import Provenance, verify_file

PROVENANCE = Provenance("3f" * 32, model_name="report-test")

METRICS = [
    {"step": s, "epoch": s // 40, "D_real": 0.6 - s / 1000, "D_fake": 0.55, "G_GAN": 0.9 + s / 500,
     "G_L1": 12.3 - s / 20, "lr": 0.0002, "it_s": 5.1}
    for s in range(20, 201, 20)
] + [{"step": 0, "val_l1": 0.44}, {"step": 200, "val_l1": 0.31}]


def _rows(n: int, size: int = 16) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [tuple(rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)) for _ in range(n)]


def _write(*args: object, **kwargs: object) -> Path:
    return write_results_page(*args, provenance=PROVENANCE, **kwargs)


def _image_refs(page: str) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]+)"', page)


def test_page_references_every_image_it_writes_and_each_decodes(tmp_path: Path) -> None:
    index = _write(tmp_path / "report", _rows(3), METRICS, "demo run")
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text()
    refs = _image_refs(page)
    assert len(refs) == 9
    assert sorted(refs) == sorted(p.relative_to(index.parent).as_posix()
                                  for p in (index.parent / "images").glob("*.png"))
    for ref in refs:
        with Image.open(index.parent / ref) as im:  # outputs are stored at the enlarged size they are shown at
            assert im.size == ((256, 256) if ref.endswith("_output.png") else (16, 16))
    assert "images/0003_target.png" in refs


def test_generated_outputs_carry_the_mark_and_dataset_images_do_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    smooth = np.repeat(np.repeat(rng.integers(60, 200, (8, 8, 3), dtype=np.uint8), 8, axis=0), 8, axis=1)
    index = _write(tmp_path, [(smooth, smooth, smooth)], METRICS, "t")
    output = verify_file(index.parent / "images" / "0001_output.png")
    assert output.marked and output.watermark.found
    assert output.watermark.model_hash_prefix == PROVENANCE.model_hash[:6]
    assert output.metadata is not None and output.metadata.model_name == "report-test"
    target = verify_file(index.parent / "images" / "0001_target.png")
    assert not target.marked and target.metadata is None


def test_samples_table_has_input_output_target_headers(tmp_path: Path) -> None:
    page = _write(tmp_path, _rows(1), METRICS, "t").read_text()
    assert re.search(r"<th>input</th><th>output</th><th>target</th>", page)


def test_small_images_are_shown_enlarged_and_pixelated(tmp_path: Path) -> None:
    page = _write(tmp_path, _rows(1, size=64), [], "t").read_text()
    assert 'class="pixelated"' in page and 'width="256"' in page
    assert "image-rendering: pixelated" in page


def test_page_draws_a_polyline_per_logged_series(tmp_path: Path) -> None:
    page = _write(tmp_path, _rows(1), METRICS, "t").read_text()
    assert "<svg" in page
    for key in ("G_L1", "G_GAN", "D_real", "D_fake", "val_l1"):
        assert f'<polyline data-key="{key}"' in page


def test_validation_chart_is_left_out_when_not_logged(tmp_path: Path) -> None:
    metrics = [m for m in METRICS if "val_l1" not in m]
    page = _write(tmp_path, _rows(1), metrics, "t").read_text()
    assert 'data-key="val_l1"' not in page
    assert 'data-key="G_L1"' in page


def test_loss_curve_has_legend_and_tick_labels_and_only_present_keys() -> None:
    svg = loss_curve_svg(METRICS, ["G_GAN", "D_real", "missing"], 400, 200)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 2
    assert ">G_GAN</text>" in svg and ">D_real</text>" in svg and "missing</text>" not in svg
    assert ">step</text>" in svg
    assert len(re.findall(r'text-anchor="end"', svg)) >= 3  # y tick labels


def test_loss_curve_skips_non_finite_values() -> None:
    svg = loss_curve_svg([{"step": 1, "G_L1": 2.0}, {"step": 2, "G_L1": float("nan")},
                          {"step": 3, "G_L1": 1.0}], ["G_L1"], 300, 150)
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert len(points) == 2 and "nan" not in svg.lower()


def test_loss_curve_with_a_single_point_does_not_divide_by_zero() -> None:
    svg = loss_curve_svg([{"step": 5, "G_L1": 3.0}], ["G_L1"], 300, 150)
    assert "<circle" in svg


def test_empty_metrics_and_rows_still_write_a_page(tmp_path: Path) -> None:
    page = _write(tmp_path, [], [], "nothing yet").read_text()
    assert "nothing yet" in page and "No training losses" in page and "No samples" in page
    assert "no data" in loss_curve_svg([], ["G_L1"], 300, 150)


def test_title_and_notes_are_html_escaped(tmp_path: Path) -> None:
    page = _write(tmp_path, _rows(1), METRICS, "<script>alert(1)</script>",
                              notes={"model <b>": "unet & <i>co</i>", "steps": "200"}).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "model &lt;b&gt;" in page and "unet &amp; &lt;i&gt;co&lt;/i&gt;" in page


def test_page_is_written_without_leftover_temporary_files(tmp_path: Path) -> None:
    _write(tmp_path, _rows(2), METRICS, "t")
    _write(tmp_path, _rows(2), METRICS, "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "index.html"]
    assert not list((tmp_path / "images").glob(".*"))


def test_page_needs_nothing_from_the_network(tmp_path: Path) -> None:
    page = _write(tmp_path, _rows(1), METRICS, "t").read_text()
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_loss_charts_plot_every_loss_a_recipe_logged_grouped_by_scale():
    from pixforge.eval.report import loss_charts

    cyclegan = [{"step": s, "epoch": 0, "lr": 2e-4, "it_s": 3.0, "D_A": 0.3, "G_A": 0.9, "cycle_A": 5.0,
                 "idt_A": 2.0, "D_B": 0.2, "G_B": 0.8, "cycle_B": 4.0, "idt_B": 1.5} for s in (1, 2)]
    cyclegan.append({"step": 2, "val_cycle_A": 0.4})
    charts = dict(loss_charts(cyclegan))
    assert charts == {"Adversarial losses": ["D_A", "G_A", "D_B", "G_B"],
                      "Weighted losses": ["cycle_A", "idt_A", "cycle_B", "idt_B"],
                      "Validation": ["val_cycle_A"]}
    pix2pix = [{"step": 1, "G_GAN": 1.0, "G_L1": 40.0, "D_real": 0.6, "D_fake": 0.7}]
    assert dict(loss_charts(pix2pix)) == {"Adversarial losses": ["G_GAN", "D_real", "D_fake"],
                                          "Weighted losses": ["G_L1"]}
    assert loss_charts([{"step": 1, "G_L1": float("nan")}]) == []
