"""Importing the CUT authors' run folders and pretrained generators.

The shared fixture is a real FastCUT run of the authors' code with G(input) it computed in eval mode; its files
hold keys without the ``module.`` prefix, which their code writes on a CPU, so copies with the prefix are made.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pixforge.compat.cut import config_from_cut_options, import_cut_run, load_cut_reference
from pixforge.compat.importers import detect_kind, import_run
from pixforge.compat.reference import ReferenceError
from pixforge.config import config_from_dict
from pixforge.infer.translator import Translator
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint, read_components
from pixforge.train.recipe import create_recipe

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def cut_dir(shared: Path) -> Path:
    folder = shared / "fixtures" / "reference-cut" / "fastcut_ngf8"
    if not (folder / "latest_net_G.pth").is_file():
        pytest.skip(f"{folder} not present")
    return folder


@pytest.fixture(scope="module")
def io(cut_dir: Path) -> dict:
    return torch.load(cut_dir / "io_eval.pt", map_location="cpu", weights_only=True)


def with_module_prefix(src: Path, dst: Path) -> Path:
    """A copy of an authors' folder as their code saves it on a CPU: every key behind ``module.``."""
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.suffix == ".pth":
            state = torch.load(path, map_location="cpu", weights_only=True)
            torch.save({f"module.{k}": v for k, v in state.items()}, dst / path.name)
        elif path.name == "train_opt.txt":
            shutil.copy(path, dst / path.name)
    return dst


def test_the_fixture_run_reproduces_the_authors_outputs(cut_dir, io):
    cfg, nets = load_cut_reference(cut_dir)
    assert cfg.model.kind == "cut" and cfg.model.cut_mode == "fastcut" and cfg.model.ngf == 8
    assert cfg.model.downsample == cfg.model.upsample == "antialias" and cfg.model.init_type == "xavier"
    assert cfg.loss.lambda_nce == 10 and not cfg.loss.nce_idt and cfg.loss.flip_equivariance
    assert set(nets) == {"G", "F", "D"}
    with torch.no_grad():
        assert (nets["G"](io["input"]) - io["output"]).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("prefixed", [False, True])
def test_an_imported_run_translates_as_the_authors_code_and_resumes(tmp_path, cut_dir, io, prefixed):
    folder = with_module_prefix(cut_dir, tmp_path / "cpu_run") if prefixed else cut_dir
    assert detect_kind(folder) == "CUT"
    run = tmp_path / "run"
    import_run(folder, run)
    components = read_components(find_checkpoint(run))
    assert components["G"].direction == "AtoB" and components["F"].role == "head"
    assert components["D"].role == "discriminator"
    translator = Translator.from_pretrained(run, precision="fp32", channels_last=False)
    with torch.no_grad():
        assert (translator.generator(io["input"]) - io["output"]).abs().max().item() < TOLERANCE
    # The heads and D came along with the authors' weights: a recipe loads the run's whole state.
    cfg_dict, state = load_checkpoint(find_checkpoint(run))
    recipe = create_recipe(config_from_dict(cfg_dict), torch.device("cpu"))
    for name in ("G", "F", "D"):
        recipe.networks[name].load_state_dict(state[name])
    theirs = torch.load(cut_dir / "latest_net_F.pth", weights_only=True)
    assert torch.equal(recipe.networks["F"].state_dict()["mlp_4.2.weight"], theirs["mlp_4.2.weight"])


def test_a_bare_pretrained_generator_is_recognised_as_cut(tmp_path, cut_dir, io):
    folder = tmp_path / "horse2zebra_cut_pretrained"
    folder.mkdir()
    state = torch.load(cut_dir / "latest_net_G.pth", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, folder / "latest_net_G.pth")
    assert detect_kind(folder) == "bare pretrained generator"
    import_run(folder, tmp_path / "run")
    translator = Translator.from_pretrained(tmp_path / "run", precision="fp32")
    assert translator.config.model.kind == "cut" and translator.config.model.downsample == "antialias"
    with torch.no_grad():
        assert (translator.generator(io["input"]) - io["output"]).abs().max().item() < TOLERANCE


def test_one_of_f_and_d_alone_is_refused_by_name(tmp_path, cut_dir):
    folder = tmp_path / "half"
    folder.mkdir()
    for name in ("latest_net_G.pth", "latest_net_F.pth", "train_opt.txt"):
        shutil.copy(cut_dir / name, folder / name)
    with pytest.raises(ReferenceError, match="no latest_net_D.pth"):
        import_cut_run(folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_options_the_authors_code_has_and_pixforge_does_not_are_named():
    with pytest.raises(ReferenceError, match="netF 'sample'"):
        config_from_cut_options({"netF": "sample"})
    with pytest.raises(ReferenceError, match="CUT_mode 'SinCUT'"):
        config_from_cut_options({"CUT_mode": "SinCUT"})
    with pytest.raises(ReferenceError, match="normG 'instance' and normD 'batch'"):
        config_from_cut_options({"normD": "batch"})
    cut = config_from_cut_options({})  # absent options: the authors' CUT defaults
    assert cut.loss.nce_idt and cut.loss.lambda_nce == 1 and cut.train.n_epochs == 200
