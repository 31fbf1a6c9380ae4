"""Bad input, class by class, as a stranger meets it: one line naming the culprit, nothing lost or overwritten,
and exit 0 only when the work was done. The CLI's own entry point runs in-process (the same error path as the
installed command, without a Python start-up per case)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pixforge.config import config_from_dict
from pixforge.nn.build import build_generator
from pixforge.runtime.checkpoint import checkpoint_name, load_checkpoint, point_latest, save_checkpoint


def one_line_error(run_cli, *args: str) -> str:
    code, _, err = run_cli(*args)
    assert code != 0, "a bad input must not exit 0"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


TINY = {"name": "tiny", "model": {"generator": "unet_32", "ngf": 4, "ndf": 4, "n_layers_d": 2},
        "data": {"preprocess": "none", "load_size": 32, "crop_size": 32}}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory holding a freshly initialised tiny generator."""
    torch.manual_seed(0)
    cfg = config_from_dict(TINY)
    folder = tmp_path / "run" / "checkpoints"
    path = save_checkpoint(folder / checkpoint_name(1), cfg.to_dict(), {"G": build_generator(cfg).state_dict()})
    point_latest(folder, path)
    (tmp_path / "run" / "config.yaml").write_text(cfg.to_yaml())
    return tmp_path / "run"


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(folder / f"{name}.png")
    return folder


# -- data loss: nothing the user did not ask to replace is replaced ----------------------------------------

def test_export_onto_the_runs_own_checkpoint_is_refused_and_the_checkpoint_survives(run_cli, run_dir):
    checkpoint = (run_dir / "checkpoints" / "latest.safetensors").resolve()
    before = checkpoint.read_bytes()
    for out in (checkpoint, run_dir / "checkpoints" / "x.safetensors"):
        line = one_line_error(run_cli, "export", "weights", str(run_dir), "--out", str(out), "--overwrite")
        assert "is the model being exported" in line
    assert checkpoint.read_bytes() == before


def test_export_onto_an_existing_file_needs_overwrite(run_cli, run_dir, tmp_path):
    target = tmp_path / "g.onnx"
    target.write_bytes(b"keep me")
    assert "already exists; pass --overwrite" in one_line_error(
        run_cli, "export", "onnx", "--model", str(run_dir), "--out", str(target))
    assert target.read_bytes() == b"keep me"


def test_import_reference_onto_an_existing_run_is_refused(run_cli, run_dir, tmp_path):
    (tmp_path / "ref").mkdir()
    config_before = (run_dir / "config.yaml").read_text()
    latest_before = os.readlink(run_dir / "checkpoints" / "latest.safetensors")
    line = one_line_error(run_cli, "import-reference", str(tmp_path / "ref"), "--out", str(run_dir))
    assert "already exists and is not empty" in line
    assert (run_dir / "config.yaml").read_text() == config_before
    assert os.readlink(run_dir / "checkpoints" / "latest.safetensors") == latest_before


def test_translate_into_an_input_folder_is_refused(run_cli, run_dir, images):
    line = one_line_error(run_cli, "translate", str(images), "--model", str(run_dir), "--out", str(images))
    assert "is an input folder" in line
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "b.png"]


def test_translate_never_replaces_an_existing_output_unless_asked(run_cli, run_dir, images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"not ours")
    line = one_line_error(run_cli, "translate", str(images), "--model", str(run_dir), "--out", str(out))
    assert "b.png: already exists" in line and "--overwrite" in line
    assert (out / "b.png").read_bytes() == b"not ours" and not (out / "a.png").exists()  # refused up front
    code, stdout, _ = run_cli("translate", str(images), "--model", str(run_dir), "--out", str(out),
                          "--overwrite")
    assert code == 0 and "wrote 2 images" in stdout
    assert Image.open(out / "b.png").size == (30, 20)


# -- silent garbage ----------------------------------------------------------------------------------------

def test_non_finite_config_values_are_refused(run_cli, tmp_path):
    line = one_line_error(run_cli, "train", "-c", "facades", "--data", str(tmp_path), "--set", "train.lr=.inf")
    assert "field 'train.lr'" in line and "finite" in line


def test_a_checkpoint_with_nan_weights_is_refused_by_name(run_cli, run_dir, images, tmp_path):
    config, state = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    key = next(k for k, v in state["G"].items() if v.is_floating_point() and v.numel() > 1)
    state["G"][key][0] = float("nan")
    bad = save_checkpoint(tmp_path / "nan.safetensors", config, state)
    line = one_line_error(run_cli, "translate", str(images), "--model", str(bad), "--out", str(tmp_path / "o"))
    assert "nan.safetensors" in line and key in line and "NaN or infinity" in line
    assert not (tmp_path / "o").exists()


# -- success that is not -------------------------------------------------------------------------------------

def test_no_images_is_not_success(run_cli, run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "folder holds no images" in one_line_error(
        run_cli, "translate", str(empty), "--model", str(run_dir), "--out", str(tmp_path / "o"))
    (empty / "notes.txt").write_text("hello")
    assert "folder holds no images" in one_line_error(
        run_cli, "translate", str(empty), "--model", str(run_dir), "--out", str(tmp_path / "o"))


def test_skip_bad_with_every_input_bad_is_not_success(run_cli, run_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    line = one_line_error(run_cli, "translate", str(bad), "--model", str(run_dir), "--out", str(tmp_path / "o"),
                          "--skip-bad")
    assert "all 1 input(s) were skipped" in line and "x.jpg" in line


# -- messages that name the culprit ----------------------------------------------------------------------

def test_damaged_and_foreign_checkpoints_are_named(run_cli, run_dir, images, tmp_path):
    good = (run_dir / "checkpoints" / "latest.safetensors").resolve()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:5000])
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    config, state = load_checkpoint(good)
    config["model"]["generator"] = "unet_31"
    unknown = save_checkpoint(tmp_path / "unknown.safetensors", config, state)
    config, state = load_checkpoint(good)
    config["model"]["ngf"] = 8
    mismatch = save_checkpoint(tmp_path / "mismatch.safetensors", config, state)
    config, state = load_checkpoint(good)
    config["train"]["batch_size"] = 0
    invalid = save_checkpoint(tmp_path / "invalid.safetensors", config, state)
    cases = {truncated: "not a readable safetensors file", foreign: "not a pixforge checkpoint",
             unknown: "unet_31", mismatch: "do not fit the architecture", invalid: "field 'train.batch_size'"}
    for path, needle in cases.items():
        line = one_line_error(run_cli, "translate", str(images), "--model", str(path), "--out", str(tmp_path / "o"))
        assert path.name in line and needle in line, line


def test_binary_garbage_as_a_config_or_train_opt_is_named(run_cli, tmp_path):
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "garbage.yaml: not a text file" in one_line_error(run_cli, "train", "-c", str(garbage))
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "train_opt.txt").write_bytes(bytes(range(256)) * 4)
    torch.save({}, ref / "latest_net_G.pth")
    assert "train_opt.txt: not a text file" in one_line_error(
        run_cli, "import-reference", str(ref), "--out", str(tmp_path / "new"))


@pytest.mark.parametrize(("args", "needle"), [
    (["--precision", "fp64"], "--precision: 'fp64' is not one of auto, fp32, bf16, fp16"),
    (["--scale", "big"], "--scale: 'big' is not one of auto, trained, native, reference"),
    (["--device", "gpu7"], "--device: 'gpu7' is not a device"),
])
def test_translate_options_are_checked_before_the_model_loads(run_cli, images, tmp_path, args, needle):
    # The model path does not exist: the option's error must come first.
    line = one_line_error(run_cli, "translate", str(images), "--model", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "o"), *args)
    assert needle in line


def test_translate_on_a_missing_gpu_names_the_option(run_cli, images, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    line = one_line_error(run_cli, "translate", str(images), "--model", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "o"), "--device", "cuda")
    assert "--device: 'cuda' requested but CUDA is not available" in line


@pytest.mark.parametrize(("sets", "needle"), [
    (["input_nc=4"], "--set 'input_nc=4': expected SECTION.FIELD=VALUE"),
    (["data.input_nc=4"], "field 'data.input_nc': Input should be 1 or 3"),
    (["train.lr=[1,"], "--set 'train.lr=[1,': the value is not valid YAML"),
    (["data.root=2", "data.root.x=1"], "--set 'data.root.x=1': conflicts with an earlier --set of 'data.root'"),
    (["data.root.x=1", "data.root=2"], "conflicts with earlier --set options inside 'data.root'"),
])
def test_set_errors_name_the_option(run_cli, tmp_path, sets, needle):
    args = [a for s in sets for a in ("--set", s)]
    assert needle in one_line_error(run_cli, "train", "-c", "facades", "--data", str(tmp_path), *args)


def test_fifos_and_link_loops_are_named_for_what_they_are(run_cli, run_dir, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert "pipe.png: not a regular file (a FIFO" in one_line_error(
        run_cli, "translate", str(fifo), "--model", str(run_dir), "--out", str(tmp_path / "o"))
    (tmp_path / "loop1.png").symlink_to(tmp_path / "loop2.png")
    (tmp_path / "loop2.png").symlink_to(tmp_path / "loop1.png")
    assert "loop1.png: a broken symbolic link or a link loop" in one_line_error(
        run_cli, "translate", str(tmp_path / "loop1.png"), "--model", str(run_dir), "--out", str(tmp_path / "o"))


def test_an_unsupported_opset_is_one_line_before_any_export(run_cli, run_dir, tmp_path):
    line = one_line_error(run_cli, "export", "onnx", "--model", str(run_dir), "--out", str(tmp_path / "g.onnx"),
                          "--opset", "999")
    assert "--opset 999: the exporter supports opsets 7 to 20" in line
    assert not (tmp_path / "g.onnx").exists()


# -- smaller -----------------------------------------------------------------------------------------------

def test_a_multi_page_tiff_is_refused_not_cut_to_its_first_page(run_cli, run_dir, tmp_path):
    pages = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    pages[0].save(tmp_path / "two.tif", save_all=True, append_images=pages[1:])
    line = one_line_error(run_cli, "translate", str(tmp_path / "two.tif"), "--model", str(run_dir), "--out",
                          str(tmp_path / "o"))
    assert "two.tif: holds 2 pages or frames" in line


def test_one_image_is_one_image(run_cli, run_dir, images, tmp_path):
    code, out, _ = run_cli("translate", str(images / "a.png"), "--model", str(run_dir), "--out",
                       str(tmp_path / "o"))
    assert code == 0 and "wrote 1 image to" in out


def test_help_shows_no_rest_markup(run_cli):
    for command in ([], ["translate"], ["train"], ["export", "weights"], ["export", "onnx"], ["demo"]):
        _, out, _ = run_cli(*command, "--help")
        assert "``" not in out and "--help" in out
