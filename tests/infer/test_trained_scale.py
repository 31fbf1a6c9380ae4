"""A model is applied at the scale it learned: trained on 2x-upscaled pairs (resized back down by training),
it translates 2x-upscaled held-out inputs better at the default scale than at their native scale."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixforge.config import config_from_dict
from pixforge.data.procedural import make_pair
from pixforge.infer.translator import Translator
from pixforge.train.loop import train


def upscaled_pairs(root, split: str, count: int, seed: int) -> None:
    """Procedural label -> rendering pairs drawn at 32 px, stored 2x larger (64 px), side by side."""
    (root / split).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        label, rendering = make_pair(rng, 32)
        big = [Image.fromarray(a).resize((64, 64), Image.Resampling.NEAREST) for a in (label, rendering)]
        pair = Image.new("RGB", (128, 64))
        pair.paste(big[0], (0, 0))
        pair.paste(big[1], (64, 0))
        pair.save(root / split / f"{i}.png")


@pytest.mark.slow
def test_default_scale_beats_native_scale_on_upscaled_inputs(tmp_path):
    upscaled_pairs(tmp_path / "data", "train", 96, seed=1)
    upscaled_pairs(tmp_path / "data", "val", 8, seed=2)
    cfg = config_from_dict({
        "model": {"generator": "unet_32", "ngf": 16, "ndf": 16, "n_layers_d": 2, "dropout": False},
        # Training resizes the 64 px sources to 32: the model learns the scale the pairs were drawn at.
        "data": {"root": str(tmp_path / "data"), "preprocess": "resize_and_crop", "load_size": 32,
                 "crop_size": 32},
        "train": {"batch_size": 8, "max_steps": 300, "lr": 0.001, "seed": 0, "log_every": 100,
                  "sample_every": 10**6, "checkpoint_every": 10**6, "precision": "fp32"},
    })
    train(cfg, tmp_path / "run")

    held_out = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "data" / "val").glob("*.png"))]
    inputs, targets = [a[:, :64] for a in held_out], [a[:, 64:] for a in held_out]

    def l1(scale: str) -> float:
        t = Translator.from_pretrained(tmp_path / "run", precision="fp32", scale=scale)
        outputs = t.predict_batch(inputs)
        assert all(o.shape == (64, 64, 3) for o in outputs)  # back at the input's own size
        return float(np.mean([np.abs(o.astype(float) - y).mean() for o, y in zip(outputs, targets, strict=True)]))

    default, native = l1("auto"), l1("native")
    assert default < 0.9 * native, (default, native)
