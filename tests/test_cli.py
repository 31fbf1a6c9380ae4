"""The command line as a user meets it: subprocesses, exit codes, one-line errors, files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def mixed_folder(tmp_path, facades) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    label = Image.open(facades / "val" / "1.jpg").crop((256, 0, 512, 256))
    label.save(folder / "square.jpg")
    label.resize((300, 170)).save(folder / "wide.png")
    label.resize((90, 200)).convert("L").save(folder / "grey.png")
    deep = (np.linspace(0, 65535, 77 * 131).reshape(77, 131)).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    return folder


def test_translate_a_folder_of_mixed_sizes_and_kinds(pixforge, run_dir, mixed_folder, tmp_path):
    out = tmp_path / "out"
    result = pixforge("translate", str(mixed_folder), "--model", str(run_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    for source in mixed_folder.iterdir():
        written = Image.open(out / f"{source.stem}.png")
        written.load()  # decodes completely
        assert written.size == Image.open(source).size
        assert written.mode == "RGB"
    assert len(list(out.iterdir())) == 4


def test_translate_never_overwrites_its_inputs(pixforge, run_dir, mixed_folder):
    before = {p.name: p.read_bytes() for p in mixed_folder.iterdir()}
    result = pixforge("translate", str(mixed_folder / "wide.png"), "--model", str(run_dir),
                      "--out", str(mixed_folder))
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in mixed_folder.iterdir() if p.name in before} == before
    assert (mixed_folder / "wide_1.png").is_file()


def test_a_corrupt_input_is_one_line_naming_the_file(pixforge, run_dir, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    result = pixforge("translate", str(bad), "--model", str(run_dir), "--out", str(tmp_path / "o"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.jpg" in lines[0] and "Traceback" not in result.stderr
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), "blue").save(good)
    skipped = pixforge("translate", str(bad), str(good), "--model", str(run_dir), "--out", str(tmp_path / "o"),
                       "--skip-bad")
    assert skipped.returncode == 0 and "wrote 1 image" in skipped.stdout and "1 skipped" in skipped.stdout
    assert "broken.jpg" in skipped.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["translate", "x.png", "--model", "no_such_run", "--out", "o"], "no_such_run: no checkpoint found"),
    (["train", "-c", "facades", "--set", "train.batch_size=0", "--data", "d"], "field 'train.batch_size'"),
    (["train", "-c", "facades"], "data.root: no dataset folder"),
    (["train", "-c", "no_such_preset"], "no_such_preset: config file not found"),
    (["import-reference", "nowhere", "--out", "o"], "nowhere: not a directory"),
    (["train", "-c", "facades", "--resume", "r"], "not both"),
])
def test_errors_are_one_line_without_traceback(pixforge, tmp_path, args, needle):
    result = pixforge(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and needle in result.stderr


def test_debug_flag_shows_the_traceback(pixforge, tmp_path):
    result = pixforge("--debug", "import-reference", "nowhere", "--out", "o", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_train_then_translate_from_the_command_line(pixforge, tmp_path, stripes_dataset):
    run = tmp_path / "run"
    result = pixforge("train", "-c", "demo", "--data", str(stripes_dataset), "--out", str(run),
                      "--set", "model.generator=unet_32", "--set", "data.load_size=32",
                      "--set", "data.crop_size=32", "--set", "train.max_steps=4")
    assert result.returncode == 0, result.stderr
    again = pixforge("train", "-c", "demo", "--data", str(stripes_dataset), "--out", str(run))
    assert again.returncode != 0 and "already holds a run" in again.stderr
    out = pixforge("translate", str(stripes_dataset / "val"), "--model", str(run), "--out", str(tmp_path / "o"))
    assert out.returncode == 0 and len(list((tmp_path / "o").glob("*.png"))) == 4


def test_an_imported_run_cannot_be_resumed(pixforge, run_dir):
    result = pixforge("train", "--resume", str(run_dir), "--data", str(run_dir))
    assert result.returncode != 0 and "holds weights only" in result.stderr


def test_presets_are_listed(pixforge):
    assert pixforge("presets").stdout.split() == ["cityscapes_hd", "cityscapes_hd_local", "demo", "edges2shoes",
                                                 "facades", "facades_hd", "facades_labels", "facades_spade",
                                                 "horse2zebra", "horse2zebra_cut", "horse2zebra_fastcut", "maps",
                                                 "mnist_cgan", "monet2photo", "summer2winter_yosemite"]
