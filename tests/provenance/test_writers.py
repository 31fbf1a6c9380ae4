"""Every writer of generated images marks what it writes: verify reads the mark back from the file.

Covered here: ``pixforge translate`` (and translate_files), training sample grids and the demo; the
results page and save_generated (the Python API's save) have their own tests. Also ``pixforge verify``'s
lines and exit codes, and translate's handling of an output the safety filter blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pixforge.config import load_config
from pixforge.data.datasets import PairedDataset
from pixforge.infer.files import translate_files
from pixforge.infer.translator import Translator
from pixforge.provenance import DEFAULT_SAFETY_FILTER, Finding, Provenance, SafetyFilter, save_generated, verify_file
from pixforge.train.samples import write_sample_grid


@pytest.fixture(scope="module")
def translator(reference_dir) -> Translator:
    return Translator.from_reference(reference_dir, device="cpu")


@pytest.fixture
def inputs(tmp_path, facades) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    label = Image.open(facades / "val" / "1.jpg").crop((256, 0, 512, 256))
    label.save(folder / "square.jpg")
    label.resize((300, 256)).save(folder / "wide.png")
    return folder


@pytest.mark.slow
def test_translate_files_marks_every_output_with_the_models_hash(translator, inputs, tmp_path):
    report = translate_files(translator, [inputs], tmp_path / "out")
    assert len(report.written) == 2 and not report.blocked
    expected = translator.model_hash
    for path in report.written:
        result = verify_file(path)
        assert result.marked and result.watermark.model_hash_prefix == expected[:6]
        assert result.metadata is not None and result.metadata.model_hash == expected


def test_translate_names_a_blocked_input_exits_1_and_writes_the_rest(run_dir, inputs, tmp_path, monkeypatch):
    from pixforge.cli import app

    def flags_wide_outputs(image: np.ndarray) -> list[Finding]:  # an injected result: no explicit image
        return [Finding("FEMALE_GENITALIA_EXPOSED", 0.97, (0, 0, 9, 9))] if image.shape[1] == 300 else []

    monkeypatch.setattr(DEFAULT_SAFETY_FILTER, "detector", flags_wide_outputs)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", str(inputs), "--model", str(run_dir), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"blocked {inputs / 'wide.png'}: the safety filter flagged explicit content" in result.output
    assert "wrote 1 image to" in result.output and "(1 blocked by the safety filter)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["square.png"]
    assert verify_file(out / "square.png").marked


@pytest.mark.slow
def test_sample_grid_is_marked_with_the_generators_hash(translator, facades, tmp_path):
    cfg = load_config("preset:facades", {"data": {"root": str(facades), "max_items": 2}})
    held_out = PairedDataset(cfg.data, "val", train=False, whole=True)
    path = write_sample_grid(tmp_path / "step_00000010.png", translator.generator, held_out, torch.device("cpu"),
                             count=2)
    result = verify_file(path)
    assert result.marked and result.watermark.found
    assert result.watermark.model_hash_prefix == translator.model_hash[:6]  # as its checkpoint would record


@pytest.mark.slow
def test_demo_results_page_outputs_are_marked(tmp_path):
    from pixforge.demo import run_demo

    page = run_demo(tmp_path, steps=2, n_train=8, n_val=2)
    outputs = sorted((page.parent / "images").glob("*_output.png"))
    assert len(outputs) == 2
    for path in outputs:
        assert verify_file(path).watermark.found
    assert all(verify_file(p).marked for p in (tmp_path / "run" / "samples").glob("*.png"))


@pytest.mark.slow
def test_verify_lines_and_exit_codes(pixforge, tmp_path, rendering, model_hash):
    marked = save_generated(rendering, tmp_path / "marked.png", Provenance(model_hash),
                            safety=SafetyFilter(detector=lambda image: []))
    plain = tmp_path / "plain.png"
    Image.fromarray(rendering).save(plain)
    broken = tmp_path / "broken.png"
    broken.write_bytes(marked.read_bytes()[:300])

    ok = pixforge("verify", str(marked))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{marked}: marked | watermark found (model {model_hash[:6]}, payload ")
    assert "bit accuracy 100%" in ok.stdout and "C2PA: absent" in ok.stdout

    mixed = pixforge("verify", str(marked), str(plain))
    assert mixed.returncode == 1
    assert f"{plain}: NOT marked | watermark not found" in mixed.stdout and "metadata: none" in mixed.stdout

    bad = pixforge("verify", str(marked), str(broken), str(tmp_path / "missing.png"))
    assert bad.returncode == 2
    errors = bad.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in bad.stderr
    assert errors[0].startswith(f"error: {broken}: ") and errors[1].startswith(f"error: {tmp_path / 'missing.png'}")
    assert bad.stdout.count("marked |") == 1  # the readable one is still reported


def test_a_run_whose_every_output_is_blocked_fails_naming_the_first_input(translator, inputs, tmp_path):
    from pixforge.infer.files import NothingTranslated

    everything = SafetyFilter(detector=lambda image: [Finding("ANUS_EXPOSED", 0.8, (0, 0, 4, 4))])
    with pytest.raises(NothingTranslated, match=r"skipped or blocked, nothing was written; first: .*square\.jpg"):
        translate_files(translator, [inputs], tmp_path / "out", safety=everything)
    assert not list((tmp_path / "out").glob("*.png"))
