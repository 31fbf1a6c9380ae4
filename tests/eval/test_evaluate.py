"""``pixforge eval`` and ``pixforge compare``: numbers that agree with their definitions, files that say the
same thing, the judge's upper bound, and a report that a browser opens without errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.eval.evaluate import TranslatorModel, evaluate
from pixforge.eval.fcn_score import Judge
from pixforge.eval.lpips import LPIPS
from pixforge.eval.metrics import mean_abs_error
from pixforge.eval.weights import ALEXNET_FILE, LPIPS_ALEX_FILE
from pixforge.infer.translator import Translator

TINY = {"generator": "unet_32", "ngf": 4, "ndf": 4}
LABELS_TO_PHOTO = {"direction": "BtoA", "input_palette": "facades"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, generator_run) -> Path:
    root = tmp_path_factory.mktemp("eval_runs")
    for seed, name in ((0, "first"), (1, "second")):
        run = generator_run(root / name, seed=seed, model=TINY, data=LABELS_TO_PHOTO)
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "G_GAN": 1 + s / 100, "G_L1": 40 - s / 10, "D_real": 0.6, "D_fake": 0.5}) + "\n"
            for s in range(10, 110, 10)))
    return root


@pytest.fixture(scope="module")
def evaluated(pixforge, runs, palette_dataset, tiny_judge, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    done = pixforge("eval", str(runs / "first"), "--data", str(palette_dataset), "--judge", str(tiny_judge),
                    "--out", str(out / "report"), "--json", str(out / "means.json"), "--no-learned")
    assert done.returncode == 0, done.stderr
    return out, done


@pytest.mark.slow
def test_eval_means_json_has_the_issue_keys_and_matches_the_csv(evaluated):
    out, done = evaluated
    means = json.loads((out / "means.json").read_text())
    assert set(means) == {"l1", "psnr", "ssim", "fcn_pixel_acc", "fcn_class_acc", "fcn_iou",
                          "real_fcn_pixel_acc", "real_fcn_class_acc", "real_fcn_iou"}
    with open(out / "report" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
    for key in ("l1", "psnr", "ssim"):
        assert means[key] == pytest.approx(np.mean([float(r[key]) for r in rows]))
    full = json.loads((out / "report" / "metrics.json").read_text())
    assert full["images"] == 4 and full["input_side"] == "B" and full["target_side"] == "A"
    assert full["means"]["l1"] == means["l1"] and "l1" in done.stdout


@pytest.mark.slow
def test_per_image_l1_is_the_models_output_against_the_photo(evaluated, runs, palette_dataset):
    out, _ = evaluated
    with open(out / "report" / "per_image.csv") as f:
        first = next(csv.DictReader(f))
    with Image.open(palette_dataset / "val" / "0.png") as im:
        pair = np.asarray(im.convert("RGB"))
    photo, labels = pair[:, :64], pair[:, 64:]
    output = Translator.from_pretrained(runs / "first").predict(labels)
    assert float(first["l1"]) == pytest.approx(mean_abs_error(output, photo))


@pytest.mark.slow
def test_real_photos_get_the_judges_own_val_scores_as_the_upper_bound(evaluated, tiny_judge):
    out, _ = evaluated
    means = json.loads((out / "means.json").read_text())
    own = Judge.load(tiny_judge).meta["val_scores"]
    assert means["real_fcn_pixel_acc"] == pytest.approx(own["pixel_acc"], abs=1e-6)
    assert means["real_fcn_iou"] == pytest.approx(own["iou"], abs=1e-6)
    assert means["fcn_pixel_acc"] < means["real_fcn_pixel_acc"]  # an untrained generator draws no facade


def test_lpips_is_reported_when_its_weights_exist_and_fid_says_which_file_it_lacks(runs, palette_dataset,
                                                                                   tmp_path):
    torch.manual_seed(0)
    net = LPIPS()
    torch.save({k.removeprefix("net."): v for k, v in net.state_dict().items() if k.startswith("net.")},
               tmp_path / ALEXNET_FILE)
    torch.save({k: v.abs() for k, v in net.state_dict().items() if k.startswith("lin")}, tmp_path / LPIPS_ALEX_FILE)
    model = TranslatorModel(Translator.from_pretrained(runs / "first"), "first", "0" * 64)
    result = evaluate(model, palette_dataset, "val", weights=tmp_path)
    assert all(r["lpips"] > 0 for r in result.per_image)
    assert result.means["lpips"] == pytest.approx(np.mean([r["lpips"] for r in result.per_image]))
    assert result.skipped == [f"FID/KID skipped: weights not found, expected "
                              f"{tmp_path / 'pt_inception-2015-12-05-6726825d.pth'}"]


@pytest.mark.slow
def test_compare_reports_both_runs_and_the_difference(pixforge, runs, palette_dataset, tmp_path):
    done = pixforge("compare", str(runs / "first"), str(runs / "second"), "--data", str(palette_dataset),
                    "--out", str(tmp_path / "cmp"), "--json", str(tmp_path / "cmp.json"), "--no-learned")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "cmp.json").read_text())
    assert data["first"]["model"] == "first" and data["second"]["model"] == "second"
    for key in ("l1", "psnr", "ssim"):
        assert data["difference"][key] == pytest.approx(data["second"][key] - data["first"][key])
    assert data["first"]["l1"] != data["second"]["l1"]
    page = (tmp_path / "cmp" / "index.html").read_text()
    assert "<th>first</th><th>second</th><th>difference (second − first)</th>" in page
    assert "difference" in done.stdout


@pytest.mark.slow
def test_an_existing_report_is_replaced_only_with_overwrite(pixforge, evaluated, runs, palette_dataset, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(evaluated[0], out)  # the module's report stays as the other tests read it
    means = (out / "means.json").read_text()
    args = ["eval", str(runs / "first"), "--data", str(palette_dataset), "--no-learned", "--max-items", "2"]
    done = pixforge(*args, "--out", str(out / "report"), "--json", str(out / "other.json"))
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"error: --out {out / 'report'}: already holds files; pass --overwrite to replace the report, or choose "
        f"another --out"]
    done = pixforge(*args, "--out", str(out / "fresh"), "--json", str(out / "means.json"))
    assert done.returncode == 1 and "--json" in done.stderr and "already exists" in done.stderr
    assert (out / "means.json").read_text() == means and not (out / "fresh").exists()  # nothing was touched
    done = pixforge(*args, "--out", str(out / "report"), "--json", str(out / "means.json"), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert (out / "means.json").read_text() != means  # replaced: two images score differently from all


@pytest.mark.slow
def test_eval_of_a_missing_split_is_one_line(pixforge, runs, palette_dataset):
    done = pixforge("eval", str(runs / "first"), "--data", str(palette_dataset), "--split", "test", "--no-learned")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {palette_dataset / 'test'}: no such folder; expected the "
                                                f"'test' split inside {palette_dataset}"]


@pytest.mark.slow
def test_report_opens_in_headless_chromium_without_errors(evaluated, open_in_browser, palette_dataset, tmp_path,
                                                         record_property):
    out, _ = evaluated
    index = out / "report" / "index.html"
    shot = tmp_path / "eval_report.png"
    page, problems = open_in_browser(index.as_uri(), screenshot=shot)
    print(f"screenshot of the report: {shot}")
    record_property("screenshot", str(shot))
    assert problems == []
    assert page.title() == f"first on {palette_dataset.name}/val"
    assert page.locator("table.metrics tr").count() == 7  # header + l1, psnr, ssim + three FCN scores
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("svg polyline").count() >= 4  # the loss curves from metrics.jsonl
    with Image.open(shot) as im:
        assert im.width >= 1000 and im.height > 1500
        assert len(np.unique(np.asarray(im.convert("L")))) > 50  # images and text, not a blank page
    assert re.search(r"Worst by L1", page.content())


def test_a_pipeline_is_evaluated_like_the_model_it_wraps(runs, palette_dataset):
    from pixforge.pipeline import Pipeline

    pipe = Pipeline.from_dict({"stages": [{"name": "photo", "model": str(runs / "first")}]}, default_name="one")
    wrapped = evaluate(pipe, palette_dataset, learned_metrics=False)
    direct = evaluate(TranslatorModel(Translator.from_pretrained(runs / "first"), "first", "0" * 64),
                      palette_dataset, learned_metrics=False)
    assert wrapped.means == direct.means
    assert (wrapped.model, wrapped.input_side, wrapped.target_side) == ("one", "B", "A")
    assert len(wrapped.model_hash) == 64
