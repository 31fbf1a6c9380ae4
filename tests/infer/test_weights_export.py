"""`pixforge export weights`: the generator and its config alone, loadable without flags, not resumable."""

import subprocess
import sys

import pytest
import torch

from pixforge.config import config_from_dict
from pixforge.infer.export import export_weights
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_discriminator, build_generator
from pixforge.runtime.checkpoint import checkpoint_name, load_checkpoint, point_latest, read_metadata, save_checkpoint


@pytest.fixture
def training_run(tmp_path):
    """A run whose checkpoint holds what training writes: G, D and optimiser state."""
    torch.manual_seed(0)
    cfg = config_from_dict({"model": {"generator": "unet_64", "ngf": 8, "ndf": 8}})
    g, d = build_generator(cfg), build_discriminator(cfg)
    opt = torch.optim.Adam(g.parameters())
    g(torch.rand(2, 3, 64, 64)).mean().backward()
    opt.step()
    state = {"G": g.state_dict(), "D": d.state_dict(), "optim": {"G": opt.state_dict()}, "ranks": [],
             "progress": {"step": 1, "epoch": 0}}
    folder = tmp_path / "run" / "checkpoints"
    point_latest(folder, save_checkpoint(folder / checkpoint_name(1), cfg.to_dict(), state))
    (tmp_path / "run" / "config.yaml").write_text(cfg.to_yaml())
    return tmp_path / "run"


def test_weights_export_holds_only_the_generator_and_translates_like_the_run(training_run, tmp_path):
    path = export_weights(training_run, tmp_path / "g.safetensors")
    _, state = load_checkpoint(path)
    assert set(state) == {"G"} and read_metadata(path)["kind"] == "weights"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    full = Translator.from_pretrained(training_run, precision="fp32")
    alone = Translator.from_pretrained(path, precision="fp32")
    assert torch.equal(full.forward(x), alone.forward(x))
    assert alone.model_hash == full.model_hash  # the same weights mark images the same way


def test_bf16_weights_are_half_the_size_and_translate_closely(training_run, tmp_path):
    fp32 = export_weights(training_run, tmp_path / "g32.safetensors")
    bf16 = export_weights(training_run, tmp_path / "g16.safetensors", dtype="bf16")
    assert bf16.stat().st_size < 0.55 * fp32.stat().st_size
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    a = Translator.from_pretrained(fp32, precision="fp32").forward(x)
    b = Translator.from_pretrained(bf16, precision="fp32").forward(x)
    assert (a - b).abs().max() < 0.05


def test_a_weights_export_cannot_be_resumed(training_run, tmp_path):
    path = export_weights(training_run, tmp_path / "export" / "g.safetensors")
    run = tmp_path / "from_export"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / checkpoint_name(1)).symlink_to(path)
    (run / "config.yaml").write_text((training_run / "config.yaml").read_text())
    result = subprocess.run([sys.executable, "-m", "pixforge", "train", "--resume", str(run), "--data", str(run)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "holds weights only" in result.stderr
