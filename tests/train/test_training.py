import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import config_from_dict, load_config
from pixforge.data.datasets import PairedDataset
from pixforge.infer.translator import Translator
from pixforge.runtime.device import resolve_precision
from pixforge.train import pix2pix
from pixforge.train.loop import TrainingDiverged, train
from pixforge.train.metrics_log import read_metrics
from pixforge.train.sampler import EpochBatches


def tiny(root, **train_overrides):
    return config_from_dict({
        "model": {"generator": "unet_32", "ngf": 8, "ndf": 8, "n_layers_d": 2},
        "data": {"root": str(root), "preprocess": "none", "load_size": 32, "crop_size": 32},
        "train": {"batch_size": 2, "max_steps": 8, "log_every": 2, "sample_every": 4, "checkpoint_every": 4,
                  **train_overrides},
    })




def test_ranks_split_each_global_batch_of_the_single_process_order():
    single = list(EpochBatches(10, 4, seed=3).batches(epoch=1))
    ranks = [list(EpochBatches(10, 2, seed=3, rank=r, world_size=2).batches(epoch=1)) for r in (0, 1)]
    for step, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][step] + ranks[1][step])
    assert list(EpochBatches(10, 4, seed=3).batches(1, start=1)) == single[1:]
    assert single != list(EpochBatches(10, 4, seed=3).batches(epoch=2))  # a new order each epoch


def test_run_directory_holds_config_metrics_samples_and_checkpoints(tmp_path, stripes_dataset):
    result = train(tiny(stripes_dataset, val_every=4), tmp_path / "run")
    run = tmp_path / "run"
    assert result.step == 8
    written = load_config(run / "config.yaml")
    assert written.model.generator == "unet_32"
    # "auto" is recorded as what it resolved to on this machine, with the scale the model learned.
    assert written.train.precision == resolve_precision("auto", torch.device("cpu"))
    assert written.train.channels_last  # auto: NHWC on the CPU
    assert written.data.source_size == (32, 32)
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records if "G_L1" in r] == [2, 4, 6, 8]
    assert [r["step"] for r in records if "val_l1" in r] == [0, 4, 8]
    grid = Image.open(run / "samples" / "step_00000004.png")
    assert grid.size[0] > 3 * 32  # input | output | target side by side
    assert (run / "checkpoints" / "latest.safetensors").resolve().name == "step_00000008.safetensors"
    assert Translator.from_pretrained(run).predict(np.zeros((20, 30, 3), np.uint8)).shape == (20, 30, 3)


def test_generator_l1_falls_on_a_learnable_task(tmp_path, stripes_dataset):
    cfg = tiny(stripes_dataset, max_steps=120, log_every=20, sample_every=1000, checkpoint_every=1000,
               lr=0.001)
    train(cfg, tmp_path / "run")
    l1 = [r["G_L1"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "G_L1" in r]
    assert l1[-1] < 0.6 * l1[0]


@pytest.mark.parametrize("gan_mode", ["lsgan", "hinge", "wgangp"])
def test_every_gan_mode_trains(tmp_path, stripes_dataset, gan_mode):
    cfg = tiny(stripes_dataset, max_steps=3, pool_size=2)
    cfg.loss.gan_mode = gan_mode
    train(cfg, tmp_path / "run")
    last = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "G_L1" in r][-1]
    assert all(np.isfinite(v) for k, v in last.items() if k.startswith(("G_", "D_")))
    assert ("D_GP" in last) == (gan_mode == "wgangp")


def test_bf16_channels_last_training_runs_on_cpu(tmp_path, stripes_dataset):
    cfg = tiny(stripes_dataset, max_steps=4, precision="bf16", channels_last=True)
    train(cfg, tmp_path / "run")
    out = Translator.from_pretrained(tmp_path / "run").forward(torch.zeros(1, 3, 32, 32))
    assert torch.isfinite(out).all()


def test_a_deterministic_run_leaves_the_callers_setting_as_it_found_it(tmp_path, stripes_dataset):
    assert not torch.are_deterministic_algorithms_enabled()
    train(tiny(stripes_dataset, max_steps=2, deterministic=True), tmp_path / "run")
    assert not torch.are_deterministic_algorithms_enabled()


def test_fp16_is_refused_without_a_gpu(tmp_path, stripes_dataset):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="train.precision: fp16 needs a CUDA device"):
        train(tiny(stripes_dataset, precision="fp16"), tmp_path / "run")


@pytest.mark.slow
def test_facades_validation_l1_falls_below_step_zero(tmp_path, facades):
    """Acceptance: labels -> photo at 64x64, small U-Net, 200 steps on CPU."""
    cfg = config_from_dict({
        "model": {"generator": "unet_64", "ngf": 32, "ndf": 32},
        "data": {"root": str(facades), "direction": "BtoA", "load_size": 72, "crop_size": 64},
        "train": {"batch_size": 4, "max_steps": 200, "val_every": 200, "log_every": 50,
                  "sample_every": 1000, "checkpoint_every": 1000},
    })
    train(cfg, tmp_path / "run")
    val = [r["val_l1"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val_l1" in r]
    assert val[-1] < 0.95 * val[0], val
    # ... and below the best constant-colour guess: it learned structure, not just the mean colour.
    held_out = PairedDataset(cfg.data, "val", train=False, whole=True)  # what validation scores
    targets = torch.stack([held_out[i]["target"] for i in range(len(held_out))])
    mean_colour = targets.mean((0, 2, 3), keepdim=True)
    assert val[-1] < (targets - mean_colour).abs().mean().item()


def test_a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, stripes_dataset,
                                                                                    monkeypatch):
    real_step = pix2pix.Pix2Pix.train_step
    calls = {"n": 0}

    def step_that_diverges_at_5(self, batch):
        calls["n"] += 1
        losses = real_step(self, batch)
        return {k: v * float("nan") for k, v in losses.items()} if calls["n"] >= 5 else losses

    monkeypatch.setattr(pix2pix.Pix2Pix, "train_step", step_that_diverges_at_5)
    cfg = tiny(stripes_dataset, max_steps=8, checkpoint_every=2, log_every=4)
    with pytest.raises(TrainingDiverged) as diverged:
        train(cfg, tmp_path / "run")
    message = str(diverged.value)
    assert all(name in message for name in ("G_GAN", "G_L1", "D_real", "D_fake"))
    assert "became NaN or infinite at step 5; the last good checkpoint is" in message
    assert message.splitlines()[0] == message and "step_00000004.safetensors" in message
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*"))
    assert checkpoints[-1] == "step_00000004.safetensors"
    assert (tmp_path / "run" / "checkpoints" / "latest.safetensors").resolve().name == checkpoints[-1]


def test_skipped_training_files_are_named(tmp_path, stripes_dataset, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(stripes_dataset, data)
    (data / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cfg = tiny(data, max_steps=1)
    cfg.data.skip_bad = True
    train(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert "skipped 1 unreadable pair(s)" in err and "broken.png" in err


def test_validation_l1_is_what_translate_gets_on_the_whole_images(tmp_path, stripes_dataset):
    cfg = tiny(stripes_dataset, max_steps=4, val_every=4, checkpoint_every=4)
    cfg.data.preprocess = "resize_and_crop"
    cfg.data.load_size = 36  # training sees 36 px resizes cropped to 32; validation must not
    train(cfg, tmp_path / "run")
    logged = [r["val_l1"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val_l1" in r][-1]
    written = load_config(tmp_path / "run" / "config.yaml")
    t = Translator.from_pretrained(tmp_path / "run", precision=written.train.precision)
    pairs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((stripes_dataset / "val").glob("*.png"))]
    errors = [np.abs(t.predict(p[:, :32]).astype(float) - p[:, 32:]).mean() / 127.5 for p in pairs]
    assert logged == pytest.approx(float(np.mean(errors)), abs=2e-3)  # only the 8-bit rounding differs


def test_resume_mid_decay_continues_the_schedule_and_the_weights_exactly(tmp_path, stripes_dataset,
                                                                         monkeypatch):
    cfg = tiny(stripes_dataset, max_steps=8, checkpoint_every=2, log_every=1, deterministic=True)
    train(cfg, tmp_path / "full")

    real_step = pix2pix.Pix2Pix.train_step
    calls = {"n": 0}

    def crash_at_step_7(self, batch):
        calls["n"] += 1
        if calls["n"] == 7:  # after the step-6 checkpoint, inside the decay (steps 4..7)
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(pix2pix.Pix2Pix, "train_step", crash_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "crashed")
    monkeypatch.setattr(pix2pix.Pix2Pix, "train_step", real_step)
    train(load_config(tmp_path / "crashed" / "config.yaml"), tmp_path / "crashed", resume=True)

    def rates(run):
        return [r["lr"] for r in read_metrics(run / "metrics.jsonl") if "lr" in r]

    assert rates(tmp_path / "crashed") == rates(tmp_path / "full")
    assert rates(tmp_path / "full")[-1] == 0.0 and rates(tmp_path / "full")[3] == pytest.approx(2e-4)
    full = Translator.from_pretrained(tmp_path / "full", precision="fp32").generator.state_dict()
    resumed = Translator.from_pretrained(tmp_path / "crashed", precision="fp32").generator.state_dict()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
