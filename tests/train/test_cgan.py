"""Class-conditional generation: label + noise -> that class (networks, data, recipe, sampling, judging)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import ConfigError, config_from_dict, load_config
from pixforge.data.classes import ClassDataset, read_idx
from pixforge.data.datasets import DatasetError
from pixforge.infer.sampler import LabelError, Sampler
from pixforge.nn.cgan import ClassConditionalGenerator, ProjectionDiscriminator
from pixforge.provenance import verify_file
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint, read_components
from pixforge.train.loop import train

TINY = {"kind": "cgan", "ngf": 8, "ndf": 8, "z_dim": 8}


def write_idx(path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def tiny_config(root, **train_options):
    return config_from_dict({"name": "cgan", "model": TINY, "data": {"root": str(root)},
                             "train": {"batch_size": 8, "log_every": 1, "sample_every": 1000, **train_options}})


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory, shapes_dataset):
    run = tmp_path_factory.mktemp("cgan") / "run"
    train(tiny_config(shapes_dataset, max_steps=6, checkpoint_every=6, sample_every=6), run)
    return run


@pytest.mark.parametrize("size", [28, 32, 64])
def test_generator_and_discriminator_shapes(size):
    g, d = ClassConditionalGenerator(5, 3, 8, 16, size), ProjectionDiscriminator(5, 3, 8, size)
    labels = torch.tensor([0, 4])
    x = g(labels, torch.randn(2, 16))
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    assert d(x, labels).shape == (2, 1)
    with pytest.raises(ValueError, match="crop_size 30"):
        ClassConditionalGenerator(5, 1, 8, 16, 30)


def test_the_label_changes_the_image_and_the_projection_term():
    torch.manual_seed(0)
    g = ClassConditionalGenerator(3, 1, 8, 8, 28).eval()
    z = torch.randn(1, 8).repeat(3, 1)
    images = g(torch.arange(3), z)
    assert (images[0] - images[1]).abs().max() > 1e-4  # the same noise drawn as two classes
    d = ProjectionDiscriminator(3, 1, 8, 28, spectral_norm=False)
    x = torch.randn(1, 1, 28, 28)
    h = d.features(x).sum(dim=(2, 3))
    for c in range(3):  # D(x, y) = ψ(φ(x)) + <embed(y), φ(x)>
        expected = d.score(h) + (d.embed.weight[c] * h).sum()
        torch.testing.assert_close(d(x, torch.tensor([c])), expected)


def test_mnist_idx_files_and_class_folders_are_read(tmp_path, shapes_dataset):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "digits-train-images-idx3-ubyte.gz", images, 0x803)
    write_idx(tmp_path / "digits-train-labels-idx1-ubyte.gz", np.array([0, 3, 1, 3, 2]), 0x801)
    assert read_idx(tmp_path / "digits-train-images-idx3-ubyte.gz").shape == (5, 28, 28)
    cfg = config_from_dict({"model": {"kind": "cgan"}, "data": {"root": str(tmp_path)}}).data
    idx = ClassDataset(cfg, "train", train=True)
    assert idx.class_names == ["0", "1", "2", "3"] and len(idx) == 5
    item = idx[1]
    assert item["label"] == 3 and item["image"].shape == (1, 28, 28)
    assert item["image"][0, 0, 0] == pytest.approx(images[1, 0, 0] / 127.5 - 1, abs=1e-6)
    folders = ClassDataset(cfg.model_copy(update={"root": shapes_dataset}), "train", train=True)
    assert folders.class_names == ["bar", "ring", "square"] and len(folders) == 24
    (tmp_path / "digits-train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="digits-train-labels-idx1-ubyte.gz: cannot be read as an IDX file"):
        ClassDataset(cfg, "train", train=True)


def test_a_cgan_config_gets_its_defaults_and_needs_layout_classes():
    cfg = config_from_dict({"model": {"kind": "cgan"}})
    assert (cfg.model.generator, cfg.model.discriminator, cfg.loss.gan_mode) == ("dcgan", "projection", "hinge")
    assert cfg.data.layout == "classes" and cfg.data.crop_size == 28 and cfg.model.spectral_norm
    with pytest.raises(ConfigError, match="layout 'classes'"):
        config_from_dict({"model": {"kind": "cgan"}, "data": {"layout": "aligned"}})
    assert load_config("mnist_cgan").model.kind == "cgan"


def test_training_records_the_classes_and_one_generator_without_a_direction(cgan_run):
    file = find_checkpoint(cgan_run)
    components = read_components(file)
    assert {n: (c.role, c.direction) for n, c in components.items()} == {
        "G": ("generator", None), "D": ("discriminator", None)}
    config, _ = load_checkpoint(file)
    assert config["data"]["class_names"] == ["bar", "ring", "square"]
    records = [json.loads(line) for line in (cgan_run / "metrics.jsonl").read_text().splitlines()]
    assert {"D", "G", "D_real", "D_fake"} <= set(records[-1])
    grid = Image.open(sorted((cgan_run / "samples").glob("*.png"))[-1])
    rows, cols = 4, 3  # 4 noise vectors, each drawn as the 3 classes; 4-pixel gaps, enlarged to >= 256 px
    assert grid.height / grid.width == pytest.approx((rows * 32 - 4) / (cols * 32 - 4), rel=0.02)


def test_sampler_draws_the_same_image_for_the_same_seed_and_names_bad_labels(cgan_run):
    sampler = Sampler.from_pretrained(cgan_run, precision="fp32")
    assert sampler.class_names == ["bar", "ring", "square"]
    one = sampler.sample(["ring", 2], seed=5)
    assert one.shape == (2, 1, 28, 28)
    torch.testing.assert_close(sampler.sample(["ring"], seed=5)[0], one[0], rtol=0, atol=1e-6)  # batch 1 vs 2
    assert sampler.label_index("square") == sampler.label_index(2) == 2
    with pytest.raises(LabelError, match=r"label 'banana': not a class .*known: bar, ring, square"):
        sampler.sample("banana")
    grid = sampler.grid(seeds=2)
    assert grid.shape == (2 * 30 - 2, 3 * 30 - 2, 1)
    with pytest.raises(ValueError, match="use pixforge sample"):
        from pixforge.infer.translator import Translator

        Translator.from_pretrained(cgan_run)


def test_sample_cli_writes_marked_files_and_a_grid(cgan_run, tmp_path, run_cli):
    code, _, err = run_cli("sample", "--model", str(cgan_run), "--label", "ring", "--label", "0", "--count", "3",
                             "--seed", "4", "--out", str(tmp_path / "s"))
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "s").glob("*.png"))
    assert files == ["bar_4.png", "bar_5.png", "bar_6.png", "ring_4.png", "ring_5.png", "ring_6.png"]
    written = tmp_path / "s" / "ring_5.png"
    assert verify_file(written).marked and Image.open(written).size == (280, 280)  # enlarged ×10 for the mark
    again = run_cli("sample", "--model", str(cgan_run), "--label", "ring", "--count", "3", "--seed", "4",
                    "--out", str(tmp_path / "t"))
    assert again[0] == 0
    assert np.array_equal(np.asarray(Image.open(written)), np.asarray(Image.open(tmp_path / "t" / "ring_5.png")))
    code, _, err = run_cli("sample", "--model", str(cgan_run), "--label", "ring", "--count", "3", "--seed", "4",
                           "--out", str(tmp_path / "s"))
    assert code == 1 and "already exists" in err
    code, _, err = run_cli("sample", "--model", str(cgan_run), "--label", "banana", "--out", str(tmp_path / "u"))
    assert code == 1 and err.strip().startswith("error: label 'banana'") and not (tmp_path / "u").exists()
    code, _, err = run_cli("sample", "--model", str(cgan_run), "--grid", "--count", "2", "--out", str(tmp_path / "g"))
    assert code == 0 and verify_file(tmp_path / "g" / "grid.png").marked


def test_onnx_export_takes_label_and_noise_and_matches_pytorch(cgan_run, tmp_path, run_cli):
    code, _, err = run_cli("export", "onnx", "--model", str(cgan_run), "--out", str(tmp_path / "g.onnx"))
    assert code == 0, err
    onnx = Sampler.from_onnx(tmp_path / "g.onnx")
    torch_sampler = Sampler.from_pretrained(cgan_run, precision="fp32")
    assert onnx.class_names == torch_sampler.class_names and onnx.model_hash == torch_sampler.model_hash
    torch.testing.assert_close(onnx.sample([0, 1, 2, 2], seed=3), torch_sampler.sample([0, 1, 2, 2], seed=3),
                               atol=1e-4, rtol=0)


def test_eval_reads_samples_with_a_classifier_of_the_data(cgan_run, shapes_dataset, tmp_path, run_cli):
    code, out, err = run_cli("judge", "train", "--kind", "classifier", "--data", str(shapes_dataset),
                             "--out", str(tmp_path / "judge"), "--epochs", "3", "--width", "8")
    assert code == 0, err
    assert "held-out accuracy" in out
    code, out, err = run_cli("eval", str(cgan_run), "--data", str(shapes_dataset), "--judge", str(tmp_path / "judge"),
                             "--out", str(tmp_path / "report"))
    assert code == 0, err
    scores = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(scores["per_class"]) == {"bar", "ring", "square"} and 0 <= scores["accuracy"] <= 1
    assert scores["per_class"]["ring"]["real_diversity"] > 0 and scores["samples_per_class"] == 50
    code, _, err = run_cli("eval", str(cgan_run), "--data", str(shapes_dataset), "--out", str(tmp_path / "r2"))
    assert code == 1 and "judge train --kind classifier" in err


def test_minibatch_std_lets_d_tell_a_batch_of_copies_from_a_varied_one():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(3, 1, 8, 28, spectral_norm=False, minibatch_std=True)
    one = torch.randn(1, 1, 28, 28)
    copies, varied = one.repeat(4, 1, 1, 1), torch.cat([one, torch.randn(3, 1, 28, 28)])
    labels = torch.zeros(4, dtype=torch.long)
    assert d(copies, labels).shape == (4, 1)
    # The first image is the same in both batches; only the batch's spread changes D's verdict on it.
    assert not torch.allclose(d(copies, labels)[0], d(varied, labels)[0])
    assert torch.isfinite(d(one, labels[:1])).all()  # a batch of one has no spread: zero, not NaN
