"""The CycleGAN recipe: two generators and two discriminators trained as the reference trains them."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from pixforge.config import ConfigError, config_from_dict, load_config
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint, read_components
from pixforge.train.loop import train
from pixforge.train.recipe import create_recipe

TINY = {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4, "ndf": 4}


def tiny_config(root, **train_options):
    return config_from_dict({"name": "cg", "model": TINY, "data": {"root": str(root), "load_size": 36,
                                                                    "crop_size": 32},
                             "train": {"log_every": 1, "sample_every": 1000, **train_options}})


def test_a_cyclegan_config_gets_the_reference_defaults():
    cfg = config_from_dict({"model": {"kind": "cyclegan"}})
    assert (cfg.model.generator, cfg.model.norm, cfg.model.dropout) == ("resnet_9blocks", "instance", False)
    assert (cfg.loss.gan_mode, cfg.loss.lambda_a, cfg.loss.lambda_b, cfg.loss.lambda_identity) == \
        ("lsgan", 10.0, 10.0, 0.5)
    assert (cfg.train.pool_size, cfg.train.lr, cfg.train.beta1, cfg.train.n_epochs, cfg.train.n_epochs_decay) == \
        (50, 2e-4, 0.5, 100, 100)
    assert cfg.data.layout == "unaligned" and (cfg.data.load_size, cfg.data.crop_size) == (286, 256)
    assert load_config("horse2zebra").model.kind == "cyclegan"


def test_identity_loss_with_different_channel_counts_is_one_line_naming_the_fields():
    with pytest.raises(ConfigError, match=r"lambda_identity.*input_nc == data.output_nc"):
        config_from_dict({"model": {"kind": "cyclegan"}, "data": {"input_nc": 1}})
    cfg = config_from_dict({"model": {"kind": "cyclegan"}, "data": {"input_nc": 1}, "loss": {"lambda_identity": 0}})
    recipe = create_recipe(cfg.model_copy(update={"model": cfg.model.model_copy(update=TINY)}), torch.device("cpu"))
    a, b = torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32)
    losses = recipe.train_step({"A": a, "B": b})
    assert "idt_A" not in losses and torch.isfinite(losses["cycle_A"])


def test_the_discriminators_judge_one_image_of_their_domain():
    cfg = config_from_dict({"model": TINY, "data": {"input_nc": 1}, "loss": {"lambda_identity": 0}})
    recipe = create_recipe(cfg, torch.device("cpu"))
    # D_A judges domain B (G_A's fakes): 3 channels; D_B judges domain A: 1 channel.
    assert recipe.networks["D_A"].state_dict()["model.0.weight"].shape[1] == 3
    assert recipe.networks["D_B"].state_dict()["model.0.weight"].shape[1] == 1
    assert recipe.components["G_B"].input_nc == 3 and recipe.components["G_B"].output_nc == 1


def test_training_writes_four_named_components_each_generator_with_its_own_hash(cyclegan_run):
    file = find_checkpoint(cyclegan_run)
    components = read_components(file)
    assert {n: (c.role, c.direction) for n, c in components.items()} == {
        "G_A": ("generator", "AtoB"), "G_B": ("generator", "BtoA"),
        "D_A": ("discriminator", None), "D_B": ("discriminator", None)}
    assert components["G_A"].sha256 and components["G_B"].sha256
    assert components["G_A"].sha256 != components["G_B"].sha256
    _, state = load_checkpoint(file)
    assert set(state["optim"]) == {"G", "D"}
    assert set(state["ranks"][0]["recipe"]["pools"]) == {"fake_A", "fake_B"}


def test_metrics_hold_every_cyclegan_loss_and_the_grid_shows_both_cycles(cyclegan_run):
    records = [json.loads(line) for line in (cyclegan_run / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "G_A" in r]
    assert losses and all(k in losses[-1] for k in
                          ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"))
    grid = Image.open(sorted((cyclegan_run / "samples").glob("*.png"))[-1])
    # 4 preview items x 2 rows (A -> B -> A, B -> A -> B), 3 columns, 4-pixel gaps, enlarged to >= 256 px.
    rows, cols = 8, 3
    assert grid.height / grid.width == pytest.approx((rows * 36 - 4) / (cols * 36 - 4), rel=0.02)


@pytest.mark.slow
def test_cycle_losses_fall_while_training(tmp_path, unpaired_dataset):
    cfg = tiny_config(unpaired_dataset, max_steps=60, checkpoint_every=60, precision="fp32")
    train(cfg, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    cycle = [r["cycle_A"] + r["cycle_B"] for r in records if "cycle_A" in r]
    first, last = sum(cycle[:10]) / 10, sum(cycle[-10:]) / 10
    assert last < 0.75 * first, f"cycle loss {first:.3f} -> {last:.3f}"


def test_a_domain_folder_missing_is_one_line_naming_it(tmp_path, unpaired_dataset):
    (tmp_path / "trainA").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "trainA" / "x.png")
    with pytest.raises(Exception, match="trainB"):
        train(tiny_config(tmp_path, max_steps=1), tmp_path / "run")
