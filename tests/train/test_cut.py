"""The CUT / FastCUT recipe: one generator, PatchNCE through projection heads, as the authors train it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import ConfigError, config_from_dict, load_config
from pixforge.data.unaligned import UnalignedDataset
from pixforge.nn.init import init_weights
from pixforge.nn.patch_nce import PatchProjector, patch_nce_loss, sample_patch_ids
from pixforge.nn.registry import create_generator
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint, read_components
from pixforge.train.loop import train
from pixforge.train.recipe import create_recipe

TINY = {"kind": "cut", "ngf": 4, "ndf": 4, "num_patches": 16, "nce_head_nc": 16}


def tiny_config(root, model=None, **train_options):
    return config_from_dict({"name": "cut", "model": {**TINY, **(model or {})},
                             "data": {"root": str(root), "load_size": 36, "crop_size": 32},
                             "train": {"log_every": 1, "sample_every": 1000, **train_options}})


def nce_by_hand(q: np.ndarray, k: np.ndarray, batch: int, tau: float) -> np.ndarray:
    """The authors' PatchNCE written out: per patch, −log softmax of [q·k⁺, q·k⁻ of its own image] / τ, with a
    patch's similarity to itself among the negatives set to −10."""
    per_image = q.shape[0] // batch
    losses = []
    for i in range(q.shape[0]):
        image = i // per_image
        own = k[image * per_image:(image + 1) * per_image]
        negatives = own @ q[i]
        negatives[i % per_image] = -10.0
        logits = np.concatenate([[q[i] @ k[i]], negatives]) / tau
        losses.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[0])
    return np.array(losses)


def test_patch_nce_equals_the_formula_written_out():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2 * 7, 5)), rng.normal(size=(2 * 7, 5))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    ours = patch_nce_loss(torch.tensor(q, dtype=torch.float32), torch.tensor(k, dtype=torch.float32), 2, 0.07)
    np.testing.assert_allclose(ours.numpy(), nce_by_hand(q, k, 2, 0.07), rtol=1e-5, atol=1e-5)
    # Negatives from the same image only: changing image 1's keys leaves image 0's losses alone.
    k2 = k.copy()
    k2[7:] = rng.normal(size=(7, 5))
    again = patch_nce_loss(torch.tensor(q, dtype=torch.float32), torch.tensor(k2, dtype=torch.float32), 2, 0.07)
    assert torch.equal(ours[:7], again[:7]) and not torch.equal(ours[7:], again[7:])


def test_keys_carry_no_gradient_and_heads_sample_the_same_places():
    feats = [torch.randn(2, 3, 6, 6, requires_grad=True), torch.randn(2, 4, 3, 3, requires_grad=True)]
    ids = sample_patch_ids(feats, 16, torch.Generator().manual_seed(0))
    assert len(ids[0]) == 16 and len(ids[1]) == 9  # fewer places than patches: all of them
    heads = PatchProjector([3, 4], width=8)
    q = heads(feats, ids)
    assert q[0].shape == (2 * 16, 8) and torch.allclose(q[0].norm(dim=1), torch.ones(32), atol=1e-5)
    patch_nce_loss(q[0], q[0], 2).sum().backward()  # q against itself: only the query side gets gradient
    assert feats[0].grad is not None and feats[0].grad.abs().sum() > 0


def test_generator_features_are_the_outputs_of_the_named_layers():
    g = create_generator("resnet_9blocks", ngf=4, norm="instance", dropout=False, upsample="antialias",
                         downsample="antialias")
    x = torch.randn(1, 3, 32, 32)
    y, feats = g(x, layers=[0, 4, 8, 12, 16])
    assert torch.equal(y, g(x))
    assert [f.shape[1] for f in feats] == [3, 8, 16, 16, 16] and feats[0].shape[-1] == 38  # layer 0: padded input
    encoded = g(x, layers=[0, 4, 8, 12, 16], encode_only=True)
    assert all(torch.equal(a, b) for a, b in zip(feats, encoded, strict=True))


def test_cut_and_fastcut_configs_get_the_authors_defaults():
    cut = config_from_dict({"model": {"kind": "cut"}})
    assert (cut.model.generator, cut.model.norm, cut.model.dropout, cut.model.init_type) == \
        ("resnet_9blocks", "instance", False, "xavier")
    assert cut.model.downsample == cut.model.upsample == "antialias"
    assert cut.model.nce_layers == (0, 4, 8, 12, 16) and cut.model.num_patches == 256
    assert (cut.loss.lambda_nce, cut.loss.nce_idt, cut.loss.flip_equivariance, cut.loss.nce_t) == (1, True, False, 0.07)
    assert (cut.train.n_epochs, cut.train.n_epochs_decay, cut.train.pool_size) == (200, 200, 0)
    assert cut.data.layout == "unaligned" and not cut.data.decay_jitter
    fast = config_from_dict({"model": {"kind": "cut", "cut_mode": "fastcut"}})
    assert (fast.loss.lambda_nce, fast.loss.nce_idt, fast.loss.flip_equivariance) == (10, False, True)
    assert (fast.train.n_epochs, fast.train.n_epochs_decay) == (150, 50)
    given = config_from_dict({"model": {"kind": "cut", "cut_mode": "fastcut"}, "loss": {"lambda_nce": 3}})
    assert given.loss.lambda_nce == 3 and given.loss.flip_equivariance  # what a config says wins
    assert load_config("horse2zebra_cut").model.cut_mode == "cut"
    assert load_config("horse2zebra_fastcut").loss.lambda_nce == 10


def test_identity_nce_with_different_channel_counts_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match=r"loss.nce_idt.*input_nc == data.output_nc"):
        config_from_dict({"model": {"kind": "cut"}, "data": {"input_nc": 1}})
    with pytest.raises(ConfigError, match="decay_jitter false: only layout 'unaligned'"):
        config_from_dict({"data": {"decay_jitter": False}})


def test_the_heads_are_built_before_any_data_and_the_same_for_the_same_seed():
    cfg = config_from_dict({"model": TINY})

    def seeded():
        torch.manual_seed(0)  # as the loop seeds before building
        return create_recipe(cfg, torch.device("cpu"))

    one, two = seeded(), seeded()
    assert {n: c.role for n, c in one.components.items()} == {"G": "generator", "F": "head", "D": "discriminator"}
    heads = one.networks["F"].state_dict()
    assert [heads[f"mlp_{i}.0.weight"].shape[1] for i in range(5)] == [3, 8, 16, 16, 16]
    assert all(torch.equal(v, two.networks["F"].state_dict()[k]) for k, v in heads.items())


def test_without_jitter_items_are_resized_straight_to_the_crop_size(unpaired_dataset):
    cfg = tiny_config(unpaired_dataset).data.model_copy(update={"flip": False, "cache": True})
    data = UnalignedDataset(cfg, "train", train=True)
    data.set_jitter(False)
    a = data[0]["A"]
    stored = np.asarray(Image.open(data.a_paths[0]).convert("RGB").resize((32, 32), Image.BICUBIC))
    np.testing.assert_allclose(((a.permute(1, 2, 0).numpy() + 1) * 127.5), stored, atol=1.0)
    data.set_jitter(True)
    assert data[0]["A"].shape == a.shape and data.cached_bytes() > 0


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_training_writes_the_three_components_and_logs_every_loss(tmp_path, unpaired_dataset, mode):
    cfg = tiny_config(unpaired_dataset, {"cut_mode": mode}, max_steps=4, checkpoint_every=4)
    train(cfg, tmp_path / "run")
    file = find_checkpoint(tmp_path / "run")
    components = read_components(file)
    assert components["G"].direction == "AtoB" and components["G"].sha256
    _, state = load_checkpoint(file)
    assert set(state["optim"]) == {"G", "D"} and "rng" in state["ranks"][0]["recipe"]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = {"D_real", "D_fake", "G_GAN", "NCE"} | ({"NCE_Y"} if mode == "cut" else set())
    assert expected <= set(records[-1]) and ("NCE_Y" in records[-1]) == (mode == "cut")
    grid = Image.open(sorted((tmp_path / "run" / "samples").glob("*.png"))[-1])
    cols = 4 if mode == "cut" else 3  # real A | fake B | real B (| G(B))
    assert grid.height / grid.width == pytest.approx((4 * 36 - 4) / (cols * 36 - 4), rel=0.02)


@pytest.mark.slow
def test_the_nce_loss_falls_while_training(tmp_path, unpaired_dataset):
    cfg = tiny_config(unpaired_dataset, {"cut_mode": "fastcut"}, max_steps=60, checkpoint_every=60,
                      precision="fp32")
    train(cfg, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    nce = [r["NCE"] for r in records if "NCE" in r]
    first, last = sum(nce[:10]) / 10, sum(nce[-10:]) / 10
    assert last < 0.8 * first, f"NCE {first:.3f} -> {last:.3f}"


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory, unpaired_dataset):
    run = tmp_path_factory.mktemp("cut") / "run"
    train(tiny_config(unpaired_dataset, max_steps=2, checkpoint_every=2), run)
    return run


def test_translate_export_serve_and_pipeline_take_its_one_direction(cut_run, unpaired_dataset, tmp_path, run_cli):
    from pixforge.infer.export import export_onnx
    from pixforge.infer.load import load_translator
    from pixforge.infer.translator import Translator
    from pixforge.pipeline import Pipeline
    from pixforge.provenance import verify_file
    from pixforge.serve.models import load_models

    code, _, err = run_cli("translate", str(unpaired_dataset / "testA"), "--model", str(cut_run),
                           "--out", str(tmp_path / "out"))
    assert code == 0, err
    outputs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outputs) == 2 and verify_file(outputs[0]).metadata.model_hash == \
        read_components(find_checkpoint(cut_run))["G"].sha256
    code, _, err = run_cli("translate", str(unpaired_dataset / "testA"), "--model", str(cut_run),
                           "--direction", "BtoA", "--out", str(tmp_path / "back"))
    assert code == 1 and "has no BtoA generator" in err and "translates one way only" in err
    assert not (tmp_path / "back").exists()

    onnx = load_translator(export_onnx(cut_run, tmp_path / "g.onnx"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(onnx.forward(x), Translator.from_pretrained(cut_run, precision="fp32").forward(x),
                               atol=1e-4, rtol=0)
    assert load_models([f"zebra={cut_run}"], device="cpu")["zebra"].translator.component == "G"
    pipe = Pipeline.from_dict({"stages": [{"name": "cut", "model": str(cut_run)}]}, device="cpu")
    assert np.asarray(pipe(np.zeros((32, 32, 3), np.uint8))).shape == (32, 32, 3)


def test_a_zero_feature_vector_projects_to_zero_with_a_finite_gradient():
    # A small G can output exactly 0 at a location (every ReLU before a bias-free conv off); the authors'
    # pow(0.5) norm gives NaN gradients there, which stopped training on step 2.
    heads = init_weights(PatchProjector([4], width=8), 0.02, "xavier")  # zero biases, as trained
    feat = torch.zeros(1, 4, 2, 2, requires_grad=True)
    q = heads([feat], [torch.arange(4)])
    patch_nce_loss(q[0], torch.randn(4, 8), 1).sum().backward()
    assert torch.equal(q[0], torch.zeros(4, 8)) and torch.isfinite(feat.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in heads.parameters())
