"""Translating label maps with pix2pixHD and SPADE models: encodings, files, features, reference folders, ONNX."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import config_from_dict, deep_merge
from pixforge.data.palette import FACADES
from pixforge.infer.features import CLUSTERS_FILE, FeatureClusters, FeatureError, cluster_features, kmeans
from pixforge.infer.files import translate_files
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_feature_encoder, build_generator
from pixforge.runtime.checkpoint import checkpoint_name, point_latest, save_checkpoint


def make_run(folder: Path, with_encoder: bool = False, **sections) -> Path:
    """A run directory holding a randomly initialised label-map model (translation does not need training)."""
    base = {
        "model": {"kind": "pix2pixhd", "generator": "global", "discriminator": "multiscale", "norm": "instance",
                  "ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "dropout": False},
        "data": {"label_nc": 5, "layout": "pix2pixhd", "instance_maps": True, "preprocess": "none",
                 "load_size": 32, "crop_size": 32},
    }
    cfg = config_from_dict(deep_merge(base, sections))
    torch.manual_seed(0)
    state = {"G": build_generator(cfg).state_dict()}
    if with_encoder:
        state["E"] = build_feature_encoder(cfg).state_dict()
    path = save_checkpoint(folder / "checkpoints" / checkpoint_name(0), cfg.to_dict(), state)
    point_latest(folder / "checkpoints", path)
    (folder / "config.yaml").write_text(cfg.to_yaml())
    return folder


def blocks(h: int = 32, w: int = 48) -> tuple[np.ndarray, np.ndarray]:
    classes = np.zeros((h, w), np.uint8)
    classes[4:20, 4:20] = 2
    classes[8:28, 24:44] = 3
    instances = classes.astype(np.int64) * 1000
    instances[8:28, 34:44] += 1  # two touching instances of class 3
    return classes, instances


def test_label_maps_in_any_form_give_the_same_translation(tmp_path):
    t = Translator.from_pretrained(make_run(tmp_path / "run"), precision="fp32")
    assert t.input_nc == 6  # 5 classes + the instance boundary channel
    classes, _ = blocks()
    from_array = t.predict(classes)
    assert from_array.shape == (32, 48, 3) and from_array.dtype == np.uint8
    Image.fromarray(classes).save(tmp_path / "labels.png")
    palette_png = Image.fromarray(classes, mode="P")
    palette_png.putpalette([7] * 768)  # its colours are irrelevant: the indices are the classes
    for image in (Image.open(tmp_path / "labels.png"), palette_png, torch.from_numpy(classes)):
        out = t.predict(image)
        assert np.array_equal(np.asarray(out), from_array if not isinstance(out, torch.Tensor) else out)


def test_instances_draw_boundaries_inside_a_class(tmp_path):
    t = Translator.from_pretrained(make_run(tmp_path / "run"), precision="fp32")
    classes, instances = blocks()
    plain, split = t.predict(classes), t.predict(classes, instances=instances)
    assert not np.array_equal(plain, split)
    with pytest.raises(ValueError, match="instances: expected an integer map of the label map's size 48x32"):
        t.predict(classes, instances=instances[:10])


def test_label_files_translate_from_a_folder_and_bad_values_name_the_file(tmp_path):
    t = Translator.from_pretrained(make_run(tmp_path / "run"), precision="fp32")
    classes, _ = blocks()
    (tmp_path / "in").mkdir()
    Image.fromarray(classes).save(tmp_path / "in" / "a.png")
    Image.fromarray(classes[:, ::-1].copy()).save(tmp_path / "in" / "b.png")
    report = translate_files(t, [tmp_path / "in"], tmp_path / "out")
    assert sorted(p.name for p in report.written) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (48, 32)
    bad = classes.copy()
    bad[0, :3] = 9
    Image.fromarray(bad).save(tmp_path / "in" / "c.png")
    with pytest.raises(ValueError, match=r"c\.png: label value 9 in 3 pixels is outside 0..4"):
        translate_files(t, [tmp_path / "in" / "c.png"], tmp_path / "out2")


def test_palette_drawings_are_snapped_for_a_palette_model(tmp_path):
    run = make_run(tmp_path / "run", data={"label_nc": 12, "layout": "aligned", "instance_maps": False,
                                           "input_palette": "facades", "direction": "BtoA"})
    t = Translator.from_pretrained(run, precision="fp32")
    classes = np.zeros((32, 32), np.uint8)
    classes[8:24, 8:24] = FACADES.index("window")
    drawing = Image.fromarray(FACADES.render(classes))
    assert np.array_equal(np.asarray(t.predict(drawing)), t.predict(classes))


def test_feature_clusters_pick_and_edit_each_instances_style(tmp_path):
    run = make_run(tmp_path / "run", with_encoder=True, model={"features": True, "feat_num": 3, "nef": 4,
                                                                "n_downsample_e": 2})
    classes, instances = blocks()
    with pytest.raises(FeatureError, match="class 3 has no clusters"):
        Translator.from_pretrained(run).predict(classes, instances=instances, features={3000: 1})
    clusters = FeatureClusters(3, {3: np.array([[0.5, 0.5, 0.5], [-0.5, 0.2, 0.9]], np.float32)})
    (run / CLUSTERS_FILE).write_text(clusters.to_json())
    t = Translator.from_pretrained(run, precision="fp32")
    assert t.label_input.clusters.centres[3].shape == (2, 3) and t.input_nc == 5 + 1 + 3
    default = t.predict(classes, instances=instances)
    picked = t.predict(classes, instances=instances, features={3001: 1})
    edited = t.predict(classes, instances=instances, features={3001: [0.9, -0.9, 0.0]})
    assert not np.array_equal(default, picked) and not np.array_equal(picked, edited)
    x = t.label_input.encode(classes, instances, {3001: [0.9, -0.9, 0.0]})
    features = x[6:].permute(1, 2, 0)
    assert torch.equal(features[10, 40], torch.tensor([0.9, -0.9, 0.0]))  # the edited instance
    assert torch.equal(features[10, 30], torch.tensor([0.5, 0.5, 0.5]))  # its neighbour: class 3's largest cluster
    assert features[0, 0].eq(0).all()  # class 0 has no clusters: the neutral value
    with pytest.raises(FeatureError, match="class 3 has clusters 0..1, instance 3001 asks for 5"):
        t.predict(classes, instances=instances, features={3001: 5})
    with pytest.raises(FeatureError, match="instance ids \\[77\\] are not in the instance map"):
        t.predict(classes, instances=instances, features={77: 0})


def test_the_cluster_command_encodes_the_training_set_per_class(tmp_path):
    root = tmp_path / "data"
    for folder in ("train_label", "train_img", "train_inst"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        classes, instances = blocks()
        Image.fromarray(classes).save(root / "train_label" / f"{i}.png")
        Image.fromarray(instances.astype(np.uint16)).save(root / "train_inst" / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / "train_img" / f"{i}.png")
    run = make_run(tmp_path / "run", with_encoder=True, model={"features": True, "nef": 4, "n_downsample_e": 2},
                   data={"root": str(root), "preprocess": "none", "crop_size": 32, "load_size": 32})
    path = cluster_features(run, n_clusters=3)
    clusters = FeatureClusters.from_json(path.read_text())
    assert path == run / CLUSTERS_FILE and set(clusters.centres) == {0, 2, 3}
    assert clusters.centres[3].shape == (3, 3)  # 2 instances x 4 images, 3 clusters
    assert np.abs(clusters.centres[3]).max() <= 1  # tanh features


def test_kmeans_finds_separated_groups_largest_first():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.05, (30, 2)), rng.normal(5, 0.05, (10, 2))])
    centres, sizes = kmeans(points, 2)
    assert sizes.tolist() == [30, 10]
    np.testing.assert_allclose(centres, [[0, 0], [5, 5]], atol=0.05)


def test_spade_and_local_models_translate_and_export_to_onnx(tmp_path):
    from pixforge.infer.export import export_onnx, max_abs_difference

    for name, model in (("spade", {"kind": "spade", "generator": "spade", "ngf": 2, "spade_hidden": 4}),
                        ("local", {"generator": "local", "n_local_enhancers": 1, "n_blocks_local": 1})):
        t = Translator.from_pretrained(make_run(tmp_path / name, model=model), device="cpu", precision="fp32")
        assert t.predict(blocks(64, 96)[0]).shape == (64, 96, 3)
        path = export_onnx(t, tmp_path / f"{name}.onnx")
        assert max_abs_difference(t, path) < 1e-4, name
        onnx = Translator.from_onnx(path)
        assert onnx.input_nc == t.input_nc
        np.testing.assert_allclose(onnx.predict(blocks(64, 96)[0]), t.predict(blocks(64, 96)[0]), atol=2)


def test_pix2pixhd_reference_folders_load_through_the_translator(tmp_path, shared):
    fixture = shared / "fixtures" / "reference-pix2pixhd"
    if not (fixture / "hd_global_ngf8_net_G.pth").is_file():
        pytest.skip(f"{fixture} not present")
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "latest_net_G.pth").write_bytes((fixture / "hd_global_ngf8_net_G.pth").read_bytes())
    (folder / "opt.txt").write_text("------------ Options -------------\nnetG: global\nngf: 8\nlabel_nc: 13\n"
                                    "no_instance: True\nnorm: instance\n-------------- End ----------------\n")
    io = torch.load(fixture / "hd_global_ngf8_io.pt", weights_only=True)
    t = Translator.from_reference(folder, precision="fp32", scale="native")
    assert (t.forward(io["input"]) - io["output"]).abs().max() < 1e-5
    from pixforge.cli import app

    app(["import-reference", str(folder), "--out", str(tmp_path / "run")], standalone_mode=False)
    again = Translator.from_pretrained(tmp_path / "run", precision="fp32", scale="native")
    assert (again.forward(io["input"]) - io["output"]).abs().max() < 1e-5


MEMORY_CHILD = """
import resource, sys, numpy as np, torch
from pixforge.infer.translator import Translator
torch.set_num_threads(2)
t = Translator.from_pretrained(sys.argv[1], precision=sys.argv[2])
labels = np.zeros((1024, 2048), np.uint8)
labels[200:800, 300:1700] = 3
out = t.predict(labels)
assert out.shape == (1024, 2048, 3)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.slow
def test_the_papers_local_generator_translates_2048x1024_on_the_cpu_in_a_few_gigabytes(tmp_path):
    """pix2pixHD's full-size G (local, ngf 32 around a 182 M global part; 35 classes + boundaries) on a
    Cityscapes-size label map: whole-image inference (no tiling: instance norm needs the whole image),
    measured as the child process's peak resident memory."""
    run = make_run(tmp_path / "run", model={"generator": "local", "ngf": 32, "n_downsample_global": 4,
                                            "n_blocks_global": 9, "n_local_enhancers": 1, "n_blocks_local": 3},
                   data={"label_nc": 35})
    peak_mb = int(subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(run), "bf16"], check=True,
                                 capture_output=True, text=True).stdout.split()[-1])
    assert peak_mb < 6_000, peak_mb  # measured: 3.4 GB in bf16 (autocast keeps bf16 weight copies), 2.7 GB in fp32

