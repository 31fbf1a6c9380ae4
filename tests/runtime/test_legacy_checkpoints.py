"""Checkpoints written before components were named still load, translate as they did, and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from pixforge.config import load_config
from pixforge.data.procedural import write_blocks_dataset
from pixforge.infer.translator import Translator
from pixforge.runtime.checkpoint import read_components, read_metadata
from pixforge.train.loop import train

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def test_legacy_files_have_no_components_table_and_read_as_pix2pix_layout():
    run_file = LEGACY / "p2p_run" / "checkpoints" / "step_00000002.safetensors"
    assert "components" not in read_metadata(run_file)
    components = read_components(run_file)
    assert {n: c.role for n, c in components.items()} == {"G": "generator", "D": "discriminator"}
    assert components["G"].direction == "AtoB"
    assert components["G"].sha256 == read_metadata(run_file)["generator_sha256"]


def test_legacy_run_and_weights_export_translate_as_they_did_then():
    expected = load_file(LEGACY / "expected.safetensors")
    for name, path in (("run", LEGACY / "p2p_run"), ("weights_bf16", LEGACY / "p2p_weights_bf16.safetensors")):
        translator = Translator.from_pretrained(path, precision="fp32")
        assert translator.component == "G" and translator.direction == "AtoB"
        out = translator.forward(expected["input"])
        assert torch.allclose(out, expected[f"output_{name}"], atol=1e-6), name
    run = Translator.from_pretrained(LEGACY / "p2p_run")
    assert run.model_hash == read_metadata(LEGACY / "p2p_run" / "checkpoints" / "step_00000002.safetensors"
                                           )["generator_sha256"]


def test_legacy_training_run_resumes_and_writes_a_components_table(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(LEGACY / "p2p_run", run_dir)
    data = tmp_path / "data"
    write_blocks_dataset(data, n_train=4, n_val=0, size=32)
    cfg = load_config(run_dir / "config.yaml", {"data": {"root": str(data)}, "train": {"max_steps": 3}})
    result = train(cfg, run_dir, resume=True)
    assert result.step == 3
    components = read_components(result.checkpoint)
    assert components["G"].role == "generator" and components["D"].role == "discriminator"
    assert "components" in read_metadata(result.checkpoint)
