"""SPADE's style images at inference: the code comes from the run's own style encoder, the same image always
gives the same look, and models that cannot take a style say so naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import config_from_dict
from pixforge.data.image_io import to_tensor
from pixforge.infer.style import StyleError
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_generator, build_style_encoder
from pixforge.runtime.checkpoint import checkpoint_name, checkpoint_parts, point_latest, save_checkpoint

SPADE = {
    "model": {"kind": "spade", "generator": "spade", "discriminator": "multiscale", "ngf": 4, "spade_hidden": 8,
              "use_vae": True, "z_dim": 8},
    "data": {"label_nc": 4, "layout": "pix2pixhd", "preprocess": "none", "load_size": 64, "crop_size": 64},
}


def make_run(folder: Path, parts: tuple[str, ...] = ("G", "E")) -> Path:
    """A run directory holding a randomly initialised SPADE with its style encoder (no training needed)."""
    cfg = config_from_dict(SPADE)
    torch.manual_seed(0)
    nets = {"G": build_generator(cfg), "E": build_style_encoder(cfg)}
    path = save_checkpoint(folder / "checkpoints" / checkpoint_name(0), cfg.to_dict(),
                           {name: nets[name].state_dict() for name in parts})
    point_latest(folder / "checkpoints", path)
    return folder


def labels() -> np.ndarray:
    classes = np.zeros((64, 64), np.uint8)
    classes[8:40, 8:40] = 1
    classes[30:60, 20:56] = 3
    return classes


def style_images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    warm = np.clip(np.array([220, 120, 40]) + rng.normal(0, 20, (48, 80, 3)), 0, 255).astype(np.uint8)
    cold = np.clip(np.array([30, 60, 200]) + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    return warm, cold


def test_a_style_image_gives_the_encoders_mean_as_the_generators_code(tmp_path):
    run = make_run(tmp_path / "run")
    assert checkpoint_parts(run / "checkpoints" / checkpoint_name(0)) == ["G", "E"]
    t = Translator.from_pretrained(run, precision="fp32")
    warm, cold = style_images()

    # The same numbers computed by hand from the saved networks.
    cfg = config_from_dict(SPADE)
    torch.manual_seed(0)
    generator, encoder = build_generator(cfg).eval(), build_style_encoder(cfg).eval()
    with torch.no_grad():
        mu, _ = encoder(to_tensor(warm).unsqueeze(0))
        onehot = torch.nn.functional.one_hot(torch.from_numpy(labels()).long(), 4).permute(2, 0, 1)[None].float()
        expected = generator(onehot, mu)[0]
        prior = generator(onehot, torch.zeros(1, 8))[0]
    styled = t.predict(torch.from_numpy(labels()), style=warm)
    assert (t.predict(torch.from_numpy(labels())) - prior).abs().max() < 1e-5  # no style: z = 0
    assert (t.forward(onehot, style_code=mu)[0] - expected).abs().max() < 1e-5
    assert (styled - expected).abs().max() < 1e-5  # a class-index tensor in, the image tensor out

    as_image = t.predict(labels(), style=Image.fromarray(warm))
    again = t.predict(labels(), style=warm)
    other = t.predict(labels(), style=cold)
    np.testing.assert_array_equal(as_image, again)  # PIL or array: the same code; deterministic
    assert np.abs(other.astype(int) - again.astype(int)).mean() > 1  # another image, another look


def test_set_style_applies_to_every_later_translation_until_cleared(tmp_path):
    t = Translator.from_pretrained(make_run(tmp_path / "run"), precision="fp32")
    warm, cold = style_images()
    plain = t.predict(labels())
    styled = t.predict(labels(), style=warm)
    t.set_style(warm)
    np.testing.assert_array_equal(t.predict(labels()), styled)
    batch = t.predict_batch([labels(), labels()[::-1].copy()])
    np.testing.assert_array_equal(batch[0], styled)  # each image of a batch gets the code
    np.testing.assert_array_equal(t.predict(labels(), style=cold), t.predict(labels(), style=cold))
    t.set_style(None)
    np.testing.assert_array_equal(t.predict(labels()), plain)

    t.set_style(warm, sample=True, seed=3)
    first = t.predict(labels())
    t.set_style(warm, sample=True, seed=3)
    np.testing.assert_array_equal(t.predict(labels()), first)  # a seed repeats a draw
    t.set_style(warm, sample=True, seed=4)
    assert not np.array_equal(t.predict(labels()), first)


def test_a_weights_export_keeps_the_style_encoder(tmp_path):
    from pixforge.infer.export import export_weights

    run = make_run(tmp_path / "run")
    warm, _ = style_images()
    path = export_weights(run, tmp_path / "spade.safetensors", dtype="bf16")
    assert checkpoint_parts(path) == ["G", "E"]
    exported = Translator.from_pretrained(path, precision="fp32").predict(labels(), style=warm).astype(int)
    original = Translator.from_pretrained(run, precision="fp32").predict(labels(), style=warm).astype(int)
    assert np.abs(exported - original).mean() < 2  # G in bf16, the encoder as it was


def test_an_onnx_export_runs_the_prior_look_and_refuses_a_style_image(tmp_path):
    from pixforge.infer.export import export_onnx, max_abs_difference

    t = Translator.from_pretrained(make_run(tmp_path / "run"), precision="fp32")
    path = export_onnx(t, tmp_path / "spade.onnx")  # the style code's reshape keeps its channel count for ONNX
    assert max_abs_difference(t, path) < 1e-4
    onnx = Translator.from_onnx(path)
    wide = np.kron(labels(), np.ones((2, 3), np.uint8))  # 128 x 192: not the traced size
    assert np.abs(onnx.predict(wide).astype(int) - t.predict(wide).astype(int)).max() <= 1
    with pytest.raises(StyleError, match=r"spade.onnx: holds no style encoder weights"):
        onnx.set_style(style_images()[0])


def test_models_without_a_style_encoder_refuse_a_style_image_naming_why(tmp_path, generator_run):
    warm, _ = style_images()
    export = make_run(tmp_path / "export", parts=("G",))
    t = Translator.from_pretrained(export, precision="fp32")
    with pytest.raises(StyleError, match=r"export/checkpoints/.*holds no style encoder weights \('E'\)"):
        t.predict(labels(), style=warm)
    pix2pix = Translator.from_pretrained(generator_run(tmp_path / "p2p", model={"generator": "unet_64", "ngf": 4}))
    with pytest.raises(StyleError, match="only SPADE models trained with the style encoder"):
        pix2pix.set_style(warm)
    with pytest.raises(StyleError, match=r"expected an image with 3 channels, got \(1, 8, 8\)"):
        Translator.from_pretrained(make_run(tmp_path / "run")).predict(labels(), style=torch.zeros(1, 8, 8))


def test_translate_command_takes_a_style_image(tmp_path, pixforge, generator_run):
    run = make_run(tmp_path / "run")
    warm, _ = style_images()
    Image.fromarray(warm).save(tmp_path / "style.png")
    Image.fromarray(labels()).save(tmp_path / "labels.png")
    plain = pixforge("translate", str(tmp_path / "labels.png"), "-m", str(run), "-o", str(tmp_path / "plain"),
                     "--precision", "fp32")
    styled = pixforge("translate", str(tmp_path / "labels.png"), "-m", str(run), "-o", str(tmp_path / "styled"),
                      "--precision", "fp32", "--style", str(tmp_path / "style.png"))
    assert plain.returncode == 0 and styled.returncode == 0, plain.stderr + styled.stderr
    a = np.asarray(Image.open(tmp_path / "plain" / "labels.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "styled" / "labels.png")).astype(int)
    expected = Translator.from_pretrained(run, precision="fp32").predict(labels(), style=warm).astype(int)
    assert np.abs(b - expected).mean() < 3  # the watermark moves values by a few levels (1.1 on average here)
    assert np.abs(a - expected).mean() > 20  # without --style: z = 0, another look (55 here)

    other = generator_run(tmp_path / "p2p", model={"generator": "unet_64", "ngf": 4})
    Image.fromarray(warm).save(tmp_path / "photo.png")
    refused = pixforge("translate", str(tmp_path / "photo.png"), "-m", str(other), "-o", str(tmp_path / "none"),
                       "--style", str(tmp_path / "style.png"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "only SPADE models trained with the style encoder" in refused.stderr
    assert not (tmp_path / "none").exists()  # refused before anything was written
