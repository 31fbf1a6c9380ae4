import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from pixforge.config import config_from_dict
from pixforge.infer.export import export_onnx, max_abs_difference
from pixforge.infer.onnx_generator import FORMAT, OnnxGenerator, OnnxModelError, read_onnx_config
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_generator
from pixforge.runtime.checkpoint import checkpoint_name, point_latest, save_checkpoint

TOL = 1e-4


def trained_looking_generator(cfg):
    """A generator whose BatchNorm running stats are not the trivial (0, 1), so eval-mode BN matters."""
    torch.manual_seed(0)
    generator = build_generator(cfg)
    side = 2 * max(cfg.data.crop_size, 32)
    generator.train()
    with torch.no_grad():
        for _ in range(3):
            generator(torch.randn(2, cfg.data.input_nc, side, side) * 0.5 + 0.2)
    return generator.eval()


@pytest.fixture(scope="module")
def unet():
    cfg = config_from_dict({"name": "tiny_unet", "model": {"generator": "unet_32", "ngf": 8},
                            "data": {"crop_size": 32}})
    return Translator(trained_looking_generator(cfg), cfg, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def resnet():
    cfg = config_from_dict({"name": "tiny_resnet", "model": {"generator": "resnet_6blocks", "ngf": 8},
                            "data": {"crop_size": 24, "input_nc": 1, "output_nc": 3}})
    return Translator(trained_looking_generator(cfg), cfg, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def unet_onnx(unet, tmp_path_factory):
    return export_onnx(unet, tmp_path_factory.mktemp("unet") / "g.onnx")


@pytest.mark.parametrize("arch", ["unet", "resnet"])
def test_onnx_runtime_matches_pytorch_for_any_batch_and_non_square_size(arch, request, tmp_path):
    translator = request.getfixturevalue(arch)
    path = export_onnx(translator, tmp_path / f"{arch}.onnx")
    onnx_generator = OnnxGenerator(path)
    m = onnx_generator.size_multiple
    assert m == translator.size_multiple
    s = max(m, 16)  # the ResNet's reflection padding needs 4x4 maps after its two downsamplings
    for batch, (h, w) in [(1, (s, 2 * s)), (3, (3 * s, s)), (1, (5 * s + m, 2 * s)), (3, (2 * s, 3 * s + m))]:
        x = torch.rand(batch, translator.input_nc, h, w) * 2 - 1
        with torch.inference_mode():
            expected = translator.generator(x)
            actual = onnx_generator(x)
        assert actual.shape == (batch, translator.output_nc, h, w)
        assert (expected - actual).abs().max() < TOL, (batch, h, w)


def test_export_bakes_in_eval_mode_even_for_paper_test_mode_translators(unet, tmp_path):
    paper = Translator(unet.generator, unet.config, device="cpu", precision="fp32", paper_test_mode=True)
    path = export_onnx(paper, tmp_path / "g.onnx")
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    with torch.inference_mode():
        expected = unet.generator.eval()(x)  # running BN statistics, no dropout
    assert (OnnxGenerator(path)(x) - expected).abs().max() < TOL
    assert not unet.generator.training


def test_translator_from_onnx_matches_pytorch_on_an_odd_sized_image(unet, unet_onnx):
    from_onnx = Translator.from_onnx(unet_onnx, intra_op_num_threads=1)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)  # padded to 64x96
    x = torch.rand(2, 3, 50, 70) * 2 - 1
    assert (from_onnx.forward(x) - unet.forward(x)).abs().max() < TOL
    expected, actual = unet.predict(image), from_onnx.predict(image)
    assert actual.shape == (50, 70, 3) and actual.dtype == np.uint8
    assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1  # rounding at a bin edge at most


def test_metadata_round_trips_the_config(unet, resnet, tmp_path):
    for translator in (unet, resnet):
        path = export_onnx(translator, tmp_path / f"{translator.config.name}.onnx")
        assert read_onnx_config(path) == translator.config
        assert OnnxGenerator(path).config == translator.config
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["format"] == FORMAT and int(meta["size_multiple"]) == translator.size_multiple
        graph = onnx.load(str(path)).graph
        assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["output"]
        dims = graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param or d.dim_value for d in dims] == ["batch", translator.input_nc, "height", "width"]


def test_atomic_write_leaves_only_the_onnx_file(unet, tmp_path):
    out = tmp_path / "models" / "g.onnx"
    export_onnx(unet, out)
    export_onnx(unet, out)  # overwriting goes through a temporary file as well
    assert [p.name for p in out.parent.iterdir()] == ["g.onnx"]


def test_a_failed_export_leaves_no_file(unet, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise onnx.checker.ValidationError("broken graph")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(onnx.checker.ValidationError):
        export_onnx(unet, tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_onnx_generator_refuses_train_mode_and_translator_refuses_paper_test_mode(unet_onnx):
    with pytest.raises(OnnxModelError, match="eval-mode only"):
        OnnxGenerator(unet_onnx).train()
    with pytest.raises(OnnxModelError, match="paper_test_mode"):
        Translator.from_onnx(unet_onnx, paper_test_mode=True)
    with pytest.raises(OnnxModelError, match="fp32"):
        Translator.from_onnx(unet_onnx, precision="bf16")


def test_non_pixforge_onnx_file_is_refused_with_one_line_naming_it(tmp_path):
    node = helper.make_node("Identity", ["input"], ["output"])
    value = helper.make_tensor_value_info
    graph = helper.make_graph([node], "plain", [value("input", onnx.TensorProto.FLOAT, [1])],
                              [value("output", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(path))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    for bad in (path, garbage):
        for load in (Translator.from_onnx, read_onnx_config):
            with pytest.raises(OnnxModelError) as info:
                load(bad)
            assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)


def test_from_pretrained_does_not_read_onnx(unet_onnx):
    with pytest.raises(ValueError, match=r"pixforge checkpoint|safetensors"):
        Translator.from_pretrained(unet_onnx)


def test_cli_exports_a_run_directory_and_translates_with_the_onnx_file(unet, tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    ckpt = save_checkpoint(run / "checkpoints" / checkpoint_name(0), unet.config.to_dict(),
                           {"G": unet.generator.state_dict(), "progress": {"step": 0, "epoch": 0}})
    point_latest(run / "checkpoints", ckpt)
    (run / "config.yaml").write_text(unet.config.to_yaml())
    out = tmp_path / "export" / "tiny.onnx"

    def pixforge(*args):
        return subprocess.run([sys.executable, "-m", "pixforge", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    done = pixforge("export", "onnx", "--model", run, "--out", out)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "max abs difference" in done.stdout
    assert done.stderr == ""  # no exporter warnings
    assert max_abs_difference(unet, out) < TOL

    Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(tmp_path / "a.png")
    done = pixforge("translate", tmp_path / "a.png", "--model", out, "--out", tmp_path / "results")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "results" / "a.png").size == (30, 40)


def test_exporting_a_missing_run_names_it(tmp_path):
    with pytest.raises(ValueError, match="nowhere: no checkpoint found"):
        export_onnx(tmp_path / "nowhere", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
