"""A model that translates both ways (CycleGAN) is used one way at a time, picked by direction, everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.infer.export import export_onnx, export_weights
from pixforge.infer.load import load_translator, split_direction
from pixforge.infer.translator import Translator
from pixforge.pipeline import Pipeline
from pixforge.provenance import verify_file
from pixforge.runtime.checkpoint import CheckpointError, find_checkpoint, read_components
from pixforge.serve.models import load_models, parse_model_arg


def x32(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_each_direction_is_its_own_generator_with_its_own_hash(cyclegan_run):
    components = read_components(find_checkpoint(cyclegan_run))
    forward = Translator.from_pretrained(cyclegan_run, precision="fp32")
    backward = Translator.from_pretrained(cyclegan_run, direction="BtoA", precision="fp32")
    assert (forward.component, forward.direction) == ("G_A", "AtoB")
    assert (backward.component, backward.direction) == ("G_B", "BtoA")
    assert forward.model_hash == components["G_A"].sha256
    assert backward.model_hash == components["G_B"].sha256
    assert not torch.allclose(forward.forward(x32()), backward.forward(x32()))


def test_a_bad_direction_or_one_a_model_lacks_is_one_line_naming_it(cyclegan_run, tmp_path, generator_run):
    with pytest.raises(CheckpointError, match="direction 'sideways': expected AtoB or BtoA"):
        Translator.from_pretrained(cyclegan_run, direction="sideways")
    one_way = generator_run(tmp_path / "p2p", model={"generator": "unet_32", "ngf": 4})
    with pytest.raises(CheckpointError, match=r"has no BtoA generator \(it holds G \(AtoB\)\).*one way only"):
        Translator.from_pretrained(one_way, direction="BtoA")


def test_a_BtoA_generator_takes_the_B_side_channels(tmp_path, unpaired_dataset):
    from pixforge.config import config_from_dict
    from pixforge.train.loop import train

    cfg = config_from_dict({"name": "grey", "model": {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4,
                                                      "ndf": 4},
                            "data": {"root": str(unpaired_dataset), "load_size": 36, "crop_size": 32,
                                     "output_nc": 1},
                            "loss": {"lambda_identity": 0}, "train": {"max_steps": 1, "sample_every": 10}})
    train(cfg, tmp_path / "run")
    backward = Translator.from_pretrained(tmp_path / "run", direction="BtoA")
    assert (backward.input_nc, backward.output_nc) == (1, 3)
    out = backward.predict(np.zeros((32, 32), np.uint8))
    assert out.shape == (32, 32, 3)


def test_translate_cli_writes_marked_outputs_naming_the_BtoA_generator(cyclegan_run, unpaired_dataset, tmp_path,
                                                                        pixforge):
    done = pixforge("translate", str(unpaired_dataset / "testB"), "--model", str(cyclegan_run),
                    "--direction", "BtoA", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    outputs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outputs) == 2
    g_b = read_components(find_checkpoint(cyclegan_run))["G_B"].sha256
    report = verify_file(outputs[0])
    assert report.marked and report.metadata.model_hash == g_b
    said = pixforge("verify", str(outputs[0]), "--model", str(cyclegan_run))
    assert said.returncode == 0 and said.stdout.strip().endswith(f"| made by G_B of {cyclegan_run}"), said.stdout
    bad = pixforge("translate", str(unpaired_dataset / "testB"), "--model", str(cyclegan_run),
                   "--direction", "up", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1 and bad.stderr.strip() == "error: --direction: 'up' is not one of AtoB, BtoA"


def test_onnx_export_per_direction_records_it_and_refuses_the_other(cyclegan_run, tmp_path):
    path = export_onnx(cyclegan_run, tmp_path / "b2a.onnx", direction="BtoA")
    onnx = load_translator(path)
    assert (onnx.direction, onnx.component) == ("BtoA", "G_B")
    torch_b = Translator.from_pretrained(cyclegan_run, direction="BtoA", precision="fp32")
    assert onnx.model_hash == torch_b.model_hash
    torch.testing.assert_close(onnx.forward(x32(1)), torch_b.forward(x32(1)), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="translates BtoA only"):
        load_translator(path, "AtoB")


def test_weights_export_keeps_both_generators_or_the_one_asked_for(cyclegan_run, tmp_path):
    both = export_weights(cyclegan_run, tmp_path / "both.safetensors")
    assert {n: c.direction for n, c in read_components(both).items()} == {"G_A": "AtoB", "G_B": "BtoA"}
    for direction in ("AtoB", "BtoA"):
        a = Translator.from_pretrained(both, direction=direction, precision="fp32").forward(x32())
        b = Translator.from_pretrained(cyclegan_run, direction=direction, precision="fp32").forward(x32())
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    only = export_weights(cyclegan_run, tmp_path / "b.safetensors", direction="BtoA")
    assert list(read_components(only)) == ["G_B"]
    assert Translator.from_pretrained(only).direction == "BtoA"  # its only generator, no flag needed


def test_serve_takes_a_direction_after_the_path(cyclegan_run):
    assert parse_model_arg(f"h2z={cyclegan_run}:BtoA") == ("h2z", cyclegan_run, "BtoA")
    assert parse_model_arg("m=runs/x") == ("m", __import__("pathlib").Path("runs/x"), None)
    assert split_direction("C:/models/run") == ("C:/models/run", None)
    models = load_models([f"zebra={cyclegan_run}", f"horse={cyclegan_run}:BtoA"], device="cpu")
    assert models["zebra"].translator.component == "G_A"
    assert models["horse"].translator.component == "G_B"
    assert models["horse"].info(8)["model_hash"] != models["zebra"].info(8)["model_hash"]
    assert (models["horse"].info(8)["component"], models["horse"].info(8)["direction"]) == ("G_B", "BtoA")


def test_a_pipeline_stage_names_its_direction(cyclegan_run, tmp_path):
    spec = {"stages": [{"name": "there", "model": str(cyclegan_run)},
                       {"name": "back", "model": str(cyclegan_run), "direction": "BtoA"}]}
    pipe = Pipeline.from_dict(spec, device="cpu", precision="fp32")
    image = np.asarray(Image.new("RGB", (32, 32), (200, 40, 40)))
    out = pipe(image)
    assert np.asarray(out).shape == (32, 32, 3)
    assert [s.translator.component for s in pipe.stages] == ["G_A", "G_B"]
    with pytest.raises(Exception, match="direction belongs to a model stage"):
        Pipeline.from_dict({"stages": [{"name": "s", "steps": ["grayscale"], "direction": "BtoA"}]})
