"""The equal-time benchmark runs both modes for the same budget and has the judge score them (tiny sizes)."""

import json

import pytest

from pixforge.bench.equal_time import equal_time_rows, mode_overrides, run_equal_time
from pixforge.bench.report import render_markdown


def test_modes_differ_only_in_speed_settings_and_share_the_budget():
    base, fast = mode_overrides("baseline", 900, 0), mode_overrides("pixforge", 900, 0)
    for overrides in (base, fast):
        assert overrides["train"]["max_seconds"] == 900 and overrides["train"]["n_epochs_decay"] == 0
    assert base["train"]["fused_adam"] is False and base["data"]["cache"] is False
    assert base["data"]["val_split"] is None and fast["data"]["val_split"] is None
    assert "fused_adam" not in fast["train"] and "cache" not in fast["data"]  # pixforge: its defaults


@pytest.mark.slow
def test_equal_time_trains_both_modes_and_judges_them(palette_dataset, tiny_judge, tmp_path):
    small = {"model": {"generator": "unet_32", "ngf": 4, "ndf": 4},
             "data": {"preprocess": "none", "load_size": 64, "crop_size": 64}}
    records = run_equal_time(palette_dataset, tmp_path / "work", tiny_judge, seconds=2, extra=small)
    assert [r["mode"] for r in records] == ["baseline", "pixforge"]
    for r in records:
        assert r["steps"] > 0 and r["train_s"] > 2
        assert 0 <= r["fcn_pixel_acc"] <= 1 and r["real_fcn_pixel_acc"] > r["fcn_pixel_acc"]
    assert run_equal_time(palette_dataset, tmp_path / "work", tiny_judge, seconds=2, extra=small) == records
    lines = (tmp_path / "work" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["mode"] for line in lines] == ["baseline", "pixforge"]  # a rerun adds nothing
    rows = equal_time_rows(records)
    assert [r.mode for r in rows] == ["baseline", "pixforge", "real photos"]
    assert rows[0].ratio == 1.0
    table = render_markdown("equal time", rows, command="pixforge bench equal-time")
    assert "| equal-time | pixforge |" in table and "steps in budget" in table
