"""The FCN-score judge: it learns photo -> classes, keeps its best val epoch, and eval/ reloads it from the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixforge.data.palette import get_palette
from pixforge.eval.fcn_score import Judge
from pixforge.train.judge import JudgeResult, JudgeSettings, LabelledPhotos, train_judge

SMALL = JudgeSettings(epochs=30, batch_size=4, crop=32, width=8, depth=2, lr=5e-3, precision="fp32")
"""The settings of conftest's ``tiny_judge``."""


@pytest.fixture(scope="module")
def judge_dir(tiny_judge):
    meta = Judge.load(tiny_judge).meta
    return tiny_judge, JudgeResult(tiny_judge / "judge.safetensors", meta["epoch"], meta["val_scores"])


@pytest.mark.slow
def test_judge_learns_and_keeps_its_best_val_epoch(judge_dir, palette_dataset):
    out, result = judge_dir
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, SMALL.epochs + 1))
    assert records[-1]["loss"] < 0.7 * records[0]["loss"]
    best = max(records, key=lambda r: r["val_iou"])
    assert result.epoch == best["epoch"] and result.scores["iou"] == pytest.approx(best["val_iou"], abs=1e-5)
    val = LabelledPhotos(palette_dataset, "val", SMALL, get_palette("facades"))
    truth = np.concatenate([c.ravel() for c in val.classes])
    present = np.unique(truth)
    majority = max(np.mean(truth == k) for k in present)
    # Always answering the commonest class scores `majority` per pixel and 1/len(present) per class.
    assert result.scores["pixel_acc"] > majority + 0.05
    assert result.scores["class_acc"] > 3 / len(present)


@pytest.mark.slow
def test_eval_reloads_the_judge_and_gets_its_val_scores(judge_dir, palette_dataset):
    from pixforge.eval.fcn_score import FCNTally

    out, result = judge_dir
    judge = Judge.load(out)
    assert judge.label_side == "B" and judge.photo_side == "A" and len(judge.palette) == 12
    val = LabelledPhotos(palette_dataset, "val", SMALL, judge.palette)
    tally = FCNTally(12)
    for photo, classes in zip(val.photos, val.classes, strict=True):
        tally.add(classes, judge.classes(photo))
    assert tally.scores() == pytest.approx(result.scores, abs=1e-6)


def test_an_existing_judge_is_not_overwritten(tmp_path, palette_dataset):
    (tmp_path / "judge.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="already holds a judge"):
        train_judge(palette_dataset, tmp_path, SMALL)


def test_a_generator_checkpoint_is_refused_as_a_judge(tmp_path, generator_run):
    run = generator_run(tmp_path / "g", model={"generator": "unet_32", "ngf": 4})
    with pytest.raises(ValueError, match="not a judge"):
        Judge.load(next((run / "checkpoints").glob("*.safetensors")))
    with pytest.raises(ValueError, match="no judge found"):
        Judge.load(tmp_path)
