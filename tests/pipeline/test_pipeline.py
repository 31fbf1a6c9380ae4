"""Pipelines: stages checked against each other before any image runs, steps, files in and out, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pixforge.data.palette import get_palette
from pixforge.pipeline import Pipeline, PipelineError
from pixforge.provenance import verify_file

FACADES = get_palette("facades")
TINY = {"generator": "unet_32", "ngf": 4, "ndf": 4}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, generator_run) -> Path:
    """Tiny random generators: photo -> labels (palette output), labels -> photo (palette input), and grey."""
    root = tmp_path_factory.mktemp("runs")
    generator_run(root / "labels", model=TINY, data={"direction": "AtoB", "output_palette": "facades"})
    generator_run(root / "photo", model=TINY, data={"direction": "BtoA", "input_palette": "facades"})
    generator_run(root / "plain", model=TINY)
    generator_run(root / "grey_out", model=TINY, data={"output_nc": 1})
    return root


def write_yaml(folder: Path, data: dict, name: str = "p.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_smallest_file_chains_two_runs_and_keeps_every_stage(runs):
    pipe = Pipeline.from_yaml(write_yaml(runs, {"stages": [{"name": "labels", "model": "labels"},
                                                           {"name": "photo", "model": "photo"}]}))
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    stages = pipe.run(image)
    assert list(stages) == ["labels", "photo"]
    assert stages["photo"].shape == (40, 56, 3) and stages["photo"].dtype == np.uint8
    expected = pipe.stages[1].translator.predict(stages["labels"])
    np.testing.assert_array_equal(stages["photo"], expected)  # stage 2 really ran on stage 1's output
    assert isinstance(pipe(Image.fromarray(image)), Image.Image)
    assert pipe.name == "p" and len(pipe.model_hash) == 64


def test_channel_mismatch_names_the_stage_field_and_both_values(runs):
    spec = {"stages": [{"name": "grey", "model": "grey_out"}, {"name": "colour", "model": "plain"}]}
    with pytest.raises(PipelineError) as err:
        Pipeline.from_yaml(write_yaml(runs, spec, "mismatch.yaml"))
    message = str(err.value)
    assert message.startswith(str(runs / "mismatch.yaml"))
    assert "stage 'colour' input channels: expects 3, stage 'grey' gives 1" in message


def test_fixed_size_mismatch_is_found_before_any_image(runs):
    spec = {"stages": [{"name": "small", "steps": [{"resize": 128}]},
                       {"name": "photo", "model": "plain", "input_size": 256}]}
    with pytest.raises(PipelineError, match=r"stage 'photo' input size: expects 256x256, stage 'small' gives 128x128"):
        Pipeline.from_yaml(write_yaml(runs, spec))
    spec["stages"] = [*spec["stages"][1:], {"name": "again", "model": "plain", "input_size": 64}]
    with pytest.raises(PipelineError, match=r"stage 'again' input size: expects 64x64, stage 'photo' gives "
                                            r"the input's size \(any\); add a resize step"):
        Pipeline.from_yaml(write_yaml(runs, spec))


def test_a_label_map_model_refuses_a_photo(runs):
    spec = {"stages": [{"name": "a", "model": "plain"}, {"name": "b", "model": "photo"}]}
    with pytest.raises(PipelineError, match="stage 'b' input values: expects a label map in palette 'facades', "
                                            r"stage 'a' gives image values \(not a label map\)"):
        Pipeline.from_yaml(write_yaml(runs, spec))
    spec["stages"].insert(1, {"name": "snapped", "steps": [{"snap": "facades"}]})
    Pipeline.from_yaml(write_yaml(runs, spec))  # snapping makes it a label map: accepted


@pytest.mark.parametrize(("spec", "needle"), [
    ({"stages": []}, "field 'stages'"),
    ({"stages": [{"name": "a"}]}, "give exactly one of model"),
    ({"stages": [{"name": "a", "model": "plain"}, {"name": "a", "model": "plain"}]}, "two stages are named 'a'"),
    ({"stages": [{"name": "a/b", "model": "plain"}]}, "field 'stages.0.name'"),
    ({"stages": [{"name": "1.png", "model": "plain"}]}, "field 'stages.0.name'"),
    ({"stages": [{"name": "a", "model": "nowhere"}]}, "stage 'a' field 'model': nowhere"),
    ({"stages": [{"name": "s", "steps": [{"blur": 3}]}]}, "stage 's' steps.0: unknown step 'blur'"),
    ({"stages": [{"name": "s", "steps": [{"resize": {"size": 64, "scale": 2}}]}]}, "exactly one of size or scale"),
    ({"stages": [{"name": "s", "steps": [{"relabel": {"map": {"window": "roof"}}}]}]}, "needs a palette"),
    ({"stages": [{"name": "s", "steps": [{"relabel": {"map": {"window": "roof"}, "palette": "facades"}}]}]},
     "has no class 'roof'"),
    ({"stages": [{"name": "s", "steps": [{"python": "no_such_module_xyz:f"}]}]}, "cannot import 'no_such_module_xyz'"),
])
def test_bad_pipeline_files_are_one_line_naming_the_field(runs, spec, needle):
    with pytest.raises(PipelineError) as err:
        Pipeline.from_yaml(write_yaml(runs, spec))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_relabel_changes_exactly_the_named_classes():
    classes = np.zeros((20, 30), np.uint8)
    classes[2:8, 3:9] = FACADES.index("window")
    classes[10:15, 10:20] = FACADES.index("door")
    from pixforge.pipeline import StepsStage

    pipe = Pipeline([StepsStage("edit", [{"relabel": {"map": {"window": "balcony"}, "palette": "facades"}}])])
    out = FACADES.snap(pipe(FACADES.render(classes)))
    expected = classes.copy()
    expected[classes == FACADES.index("window")] = FACADES.index("balcony")
    np.testing.assert_array_equal(out, expected)


def test_steps_resize_grayscale_and_python(tmp_path):
    from pixforge.pipeline import StepsStage

    (tmp_path / "edits.py").write_text("import numpy as np\n"
                                       "def invert(image, top=255):\n    return (top - image).astype(np.uint8)\n"
                                       "def halve(image):\n    return image / 2\n")
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    pipe = Pipeline([StepsStage("s", [{"python": {"call": "edits.py:invert"}}, {"resize": {"size": [15, 20]}},
                                      "grayscale"])], base_dir=tmp_path)
    out = pipe(image)
    assert out.shape == (15, 20, 1)
    assert pipe._bound[-1].gives.channels == 1 and pipe._bound[-1].gives.size == (15, 20)
    bad = Pipeline([StepsStage("s", [{"python": "edits.py:halve"}])], base_dir=tmp_path)
    with pytest.raises(PipelineError, match="stage 's' step 'python'.*returned a float64 array"):
        bad(image)


@pytest.fixture(scope="module")
def val_pairs(tmp_path_factory, facades) -> Path:
    """Three facades val pair files (A|B), as they are stored."""
    folder = tmp_path_factory.mktemp("val_pairs")
    for n in (1, 2, 3):
        (folder / f"{n}.jpg").write_bytes((facades / "val" / f"{n}.jpg").read_bytes())
    return folder


@pytest.mark.slow
def test_cli_runs_a_facades_pipeline_on_val_images_with_intermediates(pixforge, runs, run_dir, val_pairs,
                                                                     tmp_path):
    spec = {"name": "rerender", "stages": [
        {"name": "labels", "model": str(runs / "labels")},
        {"name": "edited", "steps": [{"snap": "facades"}, {"relabel": {"map": {"window": "balcony"}}}]},
        {"name": "photo", "model": str(run_dir)}]}
    out = tmp_path / "out"
    done = pixforge("pipeline", "run", str(write_yaml(tmp_path, spec)), str(val_pairs), "--out", str(out),
                    "--keep-intermediates", "--pair-side", "A")
    assert done.returncode == 0, done.stderr
    assert "wrote 3 images" in done.stdout
    for n in (1, 2, 3):
        for path in (out / f"{n}.png", out / "labels" / f"{n}.png", out / "edited" / f"{n}.png"):
            with Image.open(path) as im:
                im.load()
                assert im.size == (256, 256)
        edited = np.asarray(Image.open(out / "edited" / f"{n}.png")).astype(int)
        # Palette colours up to the invisible watermark every written image carries (a few grey levels).
        nearest = np.abs(edited[:, :, None, :] - FACADES.colours.astype(int)[None, None]).max(-1).min(-1)
        assert np.percentile(nearest, 99) <= 12, np.percentile(nearest, 99)
        assert not (FACADES.snap(edited.astype(np.uint8)) == FACADES.index("window")).any()
        assert verify_file(out / "edited" / f"{n}.png").marked
    assert sorted(p.name for p in val_pairs.iterdir()) == ["1.jpg", "2.jpg", "3.jpg"]  # inputs untouched


@pytest.mark.slow
def test_cli_shape_mismatch_is_one_line_before_any_output(pixforge, runs, val_pairs, tmp_path):
    spec = {"stages": [{"name": "grey", "model": str(runs / "grey_out")},
                       {"name": "colour", "model": str(runs / "plain")}]}
    out = tmp_path / "out"
    done = pixforge("pipeline", "run", str(write_yaml(tmp_path, spec)), str(val_pairs), "--out", str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'p.yaml'}: stage 'colour' input channels: expects 3, stage 'grey' gives 1"]
    assert not out.exists()


@pytest.mark.slow
def test_editing_labels_between_stages_changes_the_photo_where_the_labels_changed(run_dir, facades):
    """Windows turned into balconies between the stages: the photo changes there, and much less elsewhere."""
    from scipy.ndimage import binary_dilation

    def pipeline(edit: list) -> Pipeline:
        return Pipeline.from_dict({"stages": [{"name": "labels", "steps": [{"snap": "facades"}, *edit]},
                                              {"name": "photo", "model": str(run_dir)}]})

    edited = pipeline([{"relabel": {"map": {"window": "balcony"}}}])
    plain = pipeline([])
    for n in (1, 2, 3):
        with Image.open(facades / "val" / f"{n}.jpg") as im:
            labels = np.asarray(im.convert("RGB"))[:, 256:]
        a, b = edited.run(labels), plain.run(labels)
        changed = (a["labels"] != b["labels"]).any(2)
        assert changed.mean() > 0.02  # there were windows to edit
        assert np.array_equal(FACADES.snap(b["labels"])[changed], np.full(changed.sum(), FACADES.index("window")))
        diff = np.abs(a["photo"].astype(float) - b["photo"].astype(float)).mean(2)
        far = ~binary_dilation(changed, iterations=8)  # "roughly where": 8 pixels of slack around the edit
        assert diff[changed].mean() > 4 * diff[far].mean(), (n, diff[changed].mean(), diff[far].mean())
        assert diff[changed].mean() > 3  # grey levels: a visible change, not noise


def test_the_facades_rerender_example_file_validates(tmp_path, generator_run):
    """examples/facades-rerender/pipeline.yaml against runs made from the two facades presets."""
    from pixforge.config import load_config

    example = Path(__file__).resolve().parents[2] / "examples" / "facades-rerender" / "pipeline.yaml"
    for preset, run in (("facades_labels", "facades_labels"), ("facades", "facades")):
        cfg = load_config(preset).to_dict()
        cfg["model"].update(TINY)
        generator_run(tmp_path / "runs" / run, model=cfg["model"], data=cfg["data"])
    copy = tmp_path / "examples" / "facades-rerender" / "pipeline.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text(example.read_text())
    pipe = Pipeline.from_yaml(copy)
    assert [s.name for s in pipe.stages] == ["labels", "edited", "photo"]
    out = pipe.run(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert not (FACADES.snap(out["edited"]) == FACADES.index("window")).any()


def test_existing_outputs_are_refused_before_anything_runs_unless_overwrite(tmp_path):
    from pixforge.pipeline import StepsStage
    from pixforge.pipeline.files import run_files

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(inputs / f"{name}.png")
    pipe = Pipeline([StepsStage("grey", ["grayscale"]), StepsStage("big", [{"resize": 16}])])
    out = tmp_path / "out"
    report = run_files(pipe, [inputs], out, keep_intermediates=True)
    assert [p.name for p in report.finals] == ["a.png", "b.png"] and len(report.intermediates["grey"]) == 2
    (out / "grey" / "b.png").write_bytes(b"mine")
    (out / "a.png").unlink()
    with pytest.raises(FileExistsError, match=r"out/b.png: already exists \(and 2 more\); pass --overwrite"):
        run_files(pipe, [inputs], out, keep_intermediates=True)
    assert not (out / "a.png").exists()  # refused before the first image ran
    run_files(pipe, [inputs], out, keep_intermediates=True, overwrite=True)
    with Image.open(out / "grey" / "b.png") as im:
        assert im.size == (8, 8) and im.mode == "L"
    with pytest.raises(ValueError, match="is an input folder"):
        run_files(pipe, [inputs], inputs)


def test_every_image_a_pipeline_writes_is_marked_and_a_flagged_input_writes_nothing(runs, tmp_path):
    from pixforge.pipeline.files import run_files
    from pixforge.provenance import Finding, SafetyFilter, verify_file

    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):  # photo-like noise at 256 px, so the watermark has room
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(inputs / f"{name}.png")
    pipe = Pipeline.from_yaml(write_yaml(runs, {"stages": [{"name": "labels", "model": "labels"},
                                                           {"name": "photo", "model": "photo"}]}, "marked.yaml"))
    # An injected detector result (never an explicit image): it flags whatever comes from input b.
    flags_b = SafetyFilter(detector=lambda image: [Finding("ANUS_EXPOSED", 0.9, (0, 0, 4, 4))]
                           if image.mean() > flagged_mean[0] - 1e-6 and image.mean() < flagged_mean[0] + 1e-6
                           else [])
    outputs_b = pipe.run(np.asarray(Image.open(inputs / "b.png")))
    flagged_mean = [float(outputs_b["photo"].mean())]
    report = run_files(pipe, [inputs], tmp_path / "out", keep_intermediates=True, safety=flags_b)
    assert [p.name for p in report.finals] == ["a.png"] and [p.name for p, _ in report.blocked] == ["b.png"]
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == ["a.png"]  # all of b, or none
    for path in (tmp_path / "out" / "a.png", tmp_path / "out" / "labels" / "a.png"):
        assert verify_file(path).marked, path
