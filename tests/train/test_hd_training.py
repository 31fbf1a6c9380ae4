"""pix2pixHD and SPADE recipes in the shared training loop: every option runs, checkpoints resume, the
coarse-to-fine schedule freezes and unfreezes the global generator (acceptance 3 of the pix2pixHD issue)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import config_from_dict, deep_merge
from pixforge.nn.vgg import VGG19Features
from pixforge.runtime.checkpoint import load_checkpoint
from pixforge.train.loop import train
from pixforge.train.metrics_log import read_metrics

COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200), (230, 230, 60)], np.uint8)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pix2pixHD folders (train_label/, train_img/, train_inst/ and val_*): rectangles of 4 classes, the photo
    each class's colour with a little texture per instance."""
    root = tmp_path_factory.mktemp("blocks")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 2)):
        for folder in ("label", "img", "inst"):
            (root / f"{split}_{folder}").mkdir()
        for i in range(count):
            classes = np.zeros((32, 32), np.uint8)
            instances = np.zeros((32, 32), np.uint16)
            for k in range(3):
                y, x = rng.integers(0, 20, 2)
                c = int(rng.integers(1, 4))
                classes[y:y + 12, x:x + 12] = c
                instances[y:y + 12, x:x + 12] = c * 1000 + k
            photo = COLOURS[classes].astype(np.int32) + (instances % 7).astype(np.int32)[..., None] * 6
            Image.fromarray(classes).save(root / f"{split}_label" / f"{i}_labelIds.png")
            Image.fromarray(instances).save(root / f"{split}_inst" / f"{i}_instanceIds.png")
            Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(root / f"{split}_img" / f"{i}_img.png")
    return root


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG19 in torchvision's format: the real file cannot be downloaded here, and the
    loss's code path is the same."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "random_vgg19.pth"
    torch.save(VGG19Features().state_dict(), path)
    return path


def hd_config(root: Path, **sections):
    base = {
        "name": "blocks_hd",
        "model": {"kind": "pix2pixhd", "generator": "global", "discriminator": "multiscale", "norm": "instance",
                  "dropout": False, "ngf": 4, "ndf": 4, "n_downsample_global": 2, "n_blocks_global": 1,
                  "n_local_enhancers": 1, "n_blocks_local": 1, "num_d": 2, "n_layers_d": 2},
        "data": {"root": str(root), "layout": "pix2pixhd", "label_nc": 4, "instance_maps": True,
                 "preprocess": "none", "crop_size": 32, "load_size": 32},
        "loss": {"gan_mode": "lsgan", "vgg_loss": False},
        "train": {"batch_size": 2, "max_steps": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 2,
                  "n_epochs": 1, "n_epochs_decay": 1},
    }
    return config_from_dict(deep_merge(base, sections))


def logged(run: Path, key: str) -> list[float]:
    return [r[key] for r in read_metrics(run / "metrics.jsonl") if key in r]


@pytest.mark.slow
def test_pix2pixhd_with_features_and_vgg_trains_and_checkpoints_every_network(tmp_path, blocks, vgg_file):
    cfg = hd_config(blocks, model={"features": True, "feat_num": 3, "nef": 4, "n_downsample_e": 2},
                    loss={"vgg_loss": True, "vgg_weights": str(vgg_file)})
    result = train(cfg, tmp_path / "run")
    last = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert {"G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake"} <= set(last)
    assert all(np.isfinite(last[k]) for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake"))
    assert last["G_VGG"] > 0 and last["G_GAN_Feat"] > 0
    _, state = load_checkpoint(result.checkpoint)
    assert {"G", "D", "E", "optim"} <= set(state)
    assert state["G"]["model.1.weight"].shape[1] == 4 + 1 + 3  # classes + boundaries + features
    assert (tmp_path / "run" / "samples" / "step_00000004.png").is_file()


def test_a_missing_vgg_file_stops_before_training_with_one_line(tmp_path, blocks, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth.*loss.vgg_loss: false"):
        train(hd_config(blocks, loss={"vgg_loss": True}), tmp_path / "run")


def test_spade_with_style_encoder_trains_with_hinge_loss_and_a_kl_term(tmp_path, blocks):
    cfg = hd_config(blocks, model={"kind": "spade", "generator": "spade", "spectral_norm": True, "use_vae": True,
                                   "z_dim": 8, "spade_hidden": 8, "ngf": 2},
                    loss={"gan_mode": "hinge"},
                    train={"lr": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "n_epochs_decay": 0})
    result = train(cfg, tmp_path / "run")
    last = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert np.isfinite(last["KLD"]) and last["KLD"] > 0
    _, state = load_checkpoint(result.checkpoint)
    assert state["optim"]["D"]["param_groups"][0]["lr"] == pytest.approx(4e-4)
    assert any(k.endswith("parametrizations.weight.original") for k in state["D"])  # spectral norm in D


def test_pix2pixhd_also_translates_grey_images(tmp_path, stripes_dataset):
    """The reference's --label_nc 0: image input; grey here (input_nc 1), which the reference cannot take."""
    cfg = config_from_dict({
        "model": {"kind": "pix2pixhd", "generator": "global", "discriminator": "multiscale", "ngf": 4, "ndf": 4,
                  "n_downsample_global": 2, "n_blocks_global": 1, "n_layers_d": 2, "norm": "instance"},
        "data": {"root": str(stripes_dataset), "input_nc": 1, "preprocess": "none", "load_size": 32, "crop_size": 32},
        "loss": {"gan_mode": "lsgan", "vgg_loss": False},
        "train": {"batch_size": 2, "max_steps": 2, "log_every": 1, "sample_every": 1000}})
    result = train(cfg, tmp_path / "run")
    _, state = load_checkpoint(result.checkpoint)
    assert state["G"]["model.1.weight"].shape[1] == 1
    with pytest.raises(ValueError, match="model.features: the feature encoder pools per object instance"):
        train(cfg.model_copy(update={"model": cfg.model.model_copy(update={"features": True})}), tmp_path / "r2")


@pytest.mark.slow
def test_local_generator_starts_from_a_global_run_and_trains_its_global_part_after_niter_fix_global(
        tmp_path, blocks):
    """Coarse-to-fine: train `global`, then `local` initialised from it, the global part frozen for the first
    epoch; resuming across the switch gives the weights of an uninterrupted run."""
    global_run = tmp_path / "global"
    train(hd_config(blocks, model={"ngf": 8}, train={"max_steps": 4}), global_run)
    _, global_state = load_checkpoint(global_run / "checkpoints" / "latest.safetensors")

    # 8 items, batch 2: 4 steps per epoch; epoch 0 frozen, epoch 1 joint.
    local = hd_config(blocks, model={"generator": "local", "ngf": 4},
                      train={"max_steps": 8, "checkpoint_every": 2, "keep_checkpoints": 10, "niter_fix_global": 1,
                             "init_from": str(global_run), "deterministic": True})
    train(local, tmp_path / "local")
    steps = {s: load_checkpoint(tmp_path / "local" / "checkpoints" / f"step_{s:08d}.safetensors")[1]["G"]
             for s in (4, 8)}
    name = "model.1.weight"  # the global part's first conv: as the global run left it until epoch 1
    torch.testing.assert_close(steps[4][name], global_state["G"][name], rtol=0, atol=0)
    assert not torch.equal(steps[8][name], global_state["G"][name])
    assert not torch.equal(steps[4]["model1_1.1.weight"], steps[8]["model1_1.1.weight"])

    # Resume from step 2 (frozen) and from step 6 (after the switch): both end where the uninterrupted run ended.
    for start in (2, 6):
        resumed = tmp_path / f"resumed_{start}"
        (resumed / "checkpoints").mkdir(parents=True)
        (resumed / "config.yaml").write_text((tmp_path / "local" / "config.yaml").read_text())
        source = tmp_path / "local" / "checkpoints" / f"step_{start:08d}.safetensors"
        (resumed / "checkpoints" / source.name).write_bytes(source.read_bytes())
        train(local.model_copy(update={"train": local.train.model_copy(update={"init_from": None})}), resumed,
              resume=True)
        final = load_checkpoint(resumed / "checkpoints" / "step_00000008.safetensors")[1]["G"]
        for key, value in steps[8].items():
            torch.testing.assert_close(final[key], value, rtol=0, atol=0, msg=f"resumed from {start}: {key}")


def test_init_from_a_run_of_another_width_names_the_layer(tmp_path, blocks):
    train(hd_config(blocks, train={"max_steps": 2}), tmp_path / "global")
    cfg = hd_config(blocks, model={"generator": "local", "ngf": 4},  # its global part has ngf 8, the run 4
                    train={"init_from": str(tmp_path / "global")})
    with pytest.raises(ValueError, match=r"its generator 'model\.1\.weight' has shape \(4, 5, 7, 7\), this run's "
                                         r"\(8, 5, 7, 7\)"):
        train(cfg, tmp_path / "local")


def test_stepping_g_inside_its_backward_trains_exactly_as_stepping_after_it(tmp_path, blocks):
    """``train.step_in_backward`` (on by default) only changes when G's gradients are freed, never the result."""
    weights = []
    for flag in (True, False):
        result = train(hd_config(blocks, train={"step_in_backward": flag}), tmp_path / str(flag))
        weights.append(load_checkpoint(result.checkpoint)[1])
    for net in ("G", "D"):
        for key, value in weights[0][net].items():
            assert torch.equal(value, weights[1][net][key]), (net, key)
    assert weights[0]["optim"]["G"]["state"].keys() == weights[1]["optim"]["G"]["state"].keys()
