"""Importing the reference's CycleGAN runs and its bare pretrained generators.

The shared fixture is a real CycleGAN run of the reference code with G_A(input_A) and G_B(input_B) it computed
in eval mode. Bare pretrained folders (one ``latest_net_G.pth``, no options) are made from it, or from pixforge's
networks saved under the reference's key names, which for the ResNet are pixforge's own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from pixforge.compat.cyclegan import (
    build_cyclegan_networks,
    import_bare_generator,
    import_cyclegan_run,
    infer_generator_options,
    load_bare_generator,
    load_cyclegan_reference,
)
from pixforge.compat.importers import detect_kind, import_run
from pixforge.compat.reference import ReferenceError, unet_key_map
from pixforge.config import config_from_dict
from pixforge.nn.build import build_generator
from pixforge.nn.resnet import ResnetGenerator
from pixforge.nn.unet import UnetGenerator
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint, read_components

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def cyclegan_dir(shared: Path) -> Path:
    folder = shared / "fixtures" / "reference-cyclegan" / "cg_resnet6_ngf8_inst"
    if not (folder / "latest_net_G_A.pth").is_file():
        pytest.skip(f"{folder} not present")
    return folder


@pytest.fixture(scope="module")
def io(cyclegan_dir: Path) -> dict:
    return torch.load(cyclegan_dir / "io_eval.pt", map_location="cpu", weights_only=True)


def max_diff(net: nn.Module, x: torch.Tensor, expected: torch.Tensor) -> float:
    with torch.no_grad():
        return (net.eval()(x) - expected).abs().max().item()


def pth(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def bare_folder(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    """A folder as ``download_cyclegan_model.sh`` leaves it: one ``latest_net_G.pth``, no options."""
    folder.mkdir(parents=True)
    torch.save(state, folder / "latest_net_G.pth")
    return folder


def copy_run(src: Path, dst: Path, epoch: str = "latest", nets: tuple[str, ...] = ("G_A", "G_B", "D_A", "D_B"),
             options: bool = True) -> Path:
    dst.mkdir(parents=True)
    for name in nets:
        shutil.copy(src / f"latest_net_{name}.pth", dst / f"{epoch}_net_{name}.pth")
    if options:
        shutil.copy(src / "train_opt.txt", dst / "train_opt.txt")
    return dst


def networks_of_run(run: Path) -> dict[str, nn.Module]:
    """Rebuild a written run's networks from its checkpoint alone (config + components + weights)."""
    path = find_checkpoint(run)
    config, state = load_checkpoint(path)
    names = tuple(read_components(path))
    nets = build_cyclegan_networks(config_from_dict(config), names)
    for name, net in nets.items():
        net.load_state_dict(state[name])
    return nets


# --- a CycleGAN run folder -------------------------------------------------------------------------------


def test_both_generators_reproduce_the_reference_outputs(cyclegan_dir, io):
    _, nets = load_cyclegan_reference(cyclegan_dir)
    assert max_diff(nets["G_A"], io["input_A"], io["output_A"]) < TOLERANCE
    assert max_diff(nets["G_B"], io["input_B"], io["output_B"]) < TOLERANCE


def test_train_opt_becomes_a_cyclegan_config(cyclegan_dir):
    cfg, _ = load_cyclegan_reference(cyclegan_dir)
    m, d, loss, t = cfg.model, cfg.data, cfg.loss, cfg.train
    assert (m.kind, m.generator, m.ngf, m.ndf, m.norm, m.dropout) == ("cyclegan", "resnet_6blocks", 8, 8, "instance",
                                                                      False)
    assert (loss.gan_mode, loss.lambda_a, loss.lambda_b, loss.lambda_identity) == ("lsgan", 10.0, 10.0, 0.5)
    assert (d.layout, d.direction, d.load_size, d.crop_size, d.input_nc, d.output_nc) == ("unaligned", "AtoB", 286,
                                                                                         256, 3, 3)
    assert (t.pool_size, t.lr, t.n_epochs, t.n_epochs_decay) == (50, 2e-4, 1, 0)


def test_discriminators_see_one_image_of_their_domain(cyclegan_dir, io):
    _, nets = load_cyclegan_reference(cyclegan_dir)
    for name in ("D_A", "D_B"):
        raw = pth(cyclegan_dir / f"latest_net_{name}.pth")
        ours = nets[name].state_dict()
        assert set(ours) == set(raw) and all(torch.equal(ours[k], raw[k]) for k in raw)
        assert ours["model.0.weight"].shape[1] == 3  # one RGB image, not an (A, B) pair
    with torch.no_grad():
        assert nets["D_A"].eval()(io["input_B"]).shape == (3, 1, 30, 30)


def test_imported_run_translates_both_ways_from_its_checkpoint(cyclegan_dir, io, tmp_path):
    path = import_cyclegan_run(cyclegan_dir, tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").is_file() and find_checkpoint(tmp_path / "run") == path.resolve()
    components = read_components(path)
    assert list(components) == ["G_A", "G_B", "D_A", "D_B"]
    assert (components["G_A"].role, components["G_A"].direction) == ("generator", "AtoB")
    assert (components["G_B"].role, components["G_B"].direction) == ("generator", "BtoA")
    assert components["D_A"].role == components["D_B"].role == "discriminator"
    config, state = load_checkpoint(path)
    assert config["model"]["kind"] == "cyclegan"
    assert state["progress"] == {"step": 0, "epoch": 0} and state["imported_from"] == cyclegan_dir.name
    nets = networks_of_run(tmp_path / "run")
    assert max_diff(nets["G_A"], io["input_A"], io["output_A"]) < TOLERANCE
    assert max_diff(nets["G_B"], io["input_B"], io["output_B"]) < TOLERANCE


def test_epoch_option_picks_that_epochs_files(cyclegan_dir, io, tmp_path):
    folder = copy_run(cyclegan_dir, tmp_path / "ref", epoch="3")
    _, nets = load_cyclegan_reference(folder, epoch="3")
    assert max_diff(nets["G_A"], io["input_A"], io["output_A"]) < TOLERANCE
    with pytest.raises(ReferenceError, match="no latest_net_G_A.pth"):
        load_cyclegan_reference(folder)


def test_folder_without_discriminators_imports_the_generators_only(cyclegan_dir, tmp_path):
    folder = copy_run(cyclegan_dir, tmp_path / "ref", nets=("G_A", "G_B"))
    path = import_cyclegan_run(folder, tmp_path / "run")
    assert list(read_components(path)) == ["G_A", "G_B"]


def test_folder_without_options_reads_the_architecture_from_the_weights(cyclegan_dir, io, tmp_path):
    folder = copy_run(cyclegan_dir, tmp_path / "ref", options=False)
    cfg, nets = load_cyclegan_reference(folder)
    assert (cfg.model.generator, cfg.model.ngf, cfg.model.ndf) == ("resnet_6blocks", 8, 8)
    assert max_diff(nets["G_B"], io["input_B"], io["output_B"]) < TOLERANCE


def test_one_discriminator_alone_is_refused(cyclegan_dir, tmp_path):
    folder = copy_run(cyclegan_dir, tmp_path / "ref", nets=("G_A", "G_B", "D_A"))
    with pytest.raises(ReferenceError, match="no latest_net_D_B.pth"):
        load_cyclegan_reference(folder)


# --- bare pretrained generators --------------------------------------------------------------------------


def test_bare_cyclegan_generator_is_recognised_and_reproduces_the_reference(cyclegan_dir, io, tmp_path):
    folder = bare_folder(tmp_path / "facades_label2photo_pretrained", pth(cyclegan_dir / "latest_net_G_A.pth"))
    assert infer_generator_options(pth(folder / "latest_net_G.pth")) == {
        "netG": "resnet_6blocks", "ngf": "8", "input_nc": "3", "output_nc": "3", "norm": "instance",
        "no_dropout": "True"}
    path = import_bare_generator(folder / "latest_net_G.pth", tmp_path / "run")
    components = read_components(path)
    assert list(components) == ["G_A"] and components["G_A"].direction == "AtoB"
    config, _ = load_checkpoint(path, only="G_A")
    assert config["model"]["kind"] == "cyclegan" and config["name"] == "facades_label2photo_pretrained"
    assert max_diff(networks_of_run(tmp_path / "run")["G_A"], io["input_A"], io["output_A"]) < TOLERANCE


def test_data_parallel_prefix_is_accepted(cyclegan_dir, io, tmp_path):
    state = {f"module.{k}": v for k, v in pth(cyclegan_dir / "latest_net_G_A.pth").items()}
    folder = bare_folder(tmp_path / "bare", state)
    _, generator = load_bare_generator(folder / "latest_net_G.pth")
    assert max_diff(generator, io["input_A"], io["output_A"]) < TOLERANCE


def test_dropout_shifted_resnet_keys_are_recognised(cyclegan_dir, io, tmp_path):
    # With dropout the reference's ResnetBlock puts its second convolution at conv_block.6, not .5.
    plain = pth(cyclegan_dir / "latest_net_G_A.pth")
    shifted = {k.replace("conv_block.5.", "conv_block.6."): v for k, v in plain.items()}
    assert set(shifted) == set(ResnetGenerator(3, 3, 8, "instance", dropout=True, n_blocks=6).state_dict())
    folder = bare_folder(tmp_path / "bare", shifted)
    assert infer_generator_options(shifted)["no_dropout"] == "False"
    cfg, generator = load_bare_generator(folder / "latest_net_G.pth")
    assert cfg.model.dropout
    assert max_diff(generator, io["input_A"], io["output_A"]) < TOLERANCE  # eval mode: dropout is off


@pytest.mark.parametrize("dropout", [False, True])
def test_batch_norm_resnet_is_told_from_dropout(dropout):
    # With batch norm, conv_block.6.weight also exists without dropout: it is the second norm's weight.
    state = ResnetGenerator(1, 3, 4, "batch", dropout=dropout, n_blocks=9).state_dict()
    assert infer_generator_options(state) == {"netG": "resnet_9blocks", "ngf": "4", "input_nc": "1", "output_nc": "3",
                                              "norm": "batch", "no_dropout": str(not dropout)}


def test_old_instance_norm_running_stats_are_ignored(cyclegan_dir, io, tmp_path):
    # PyTorch before 0.4 saved running statistics for InstanceNorm; they carry no weights to load.
    state = dict(pth(cyclegan_dir / "latest_net_G_A.pth"))
    state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(8), torch.ones(8)
    assert infer_generator_options(state)["norm"] == "instance"
    folder = bare_folder(tmp_path / "bare", state)
    _, generator = load_bare_generator(folder / "latest_net_G.pth")
    assert max_diff(generator, io["input_A"], io["output_A"]) < TOLERANCE


def test_bare_unet_generator_imports_as_pix2pix(tmp_path):
    torch.manual_seed(0)
    net = UnetGenerator(3, 3, num_downs=8, ngf=8, norm="batch", dropout=True).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    names = unet_key_map(net)
    folder = bare_folder(tmp_path / "facades_label2photo_pretrained",
                         {names[k]: v for k, v in net.state_dict().items()})
    assert infer_generator_options(pth(folder / "latest_net_G.pth")) == {
        "netG": "unet_256", "ngf": "8", "input_nc": "3", "output_nc": "3", "norm": "batch", "no_dropout": "False"}
    path = import_bare_generator(folder / "latest_net_G.pth", tmp_path / "run")
    components = read_components(path)
    assert list(components) == ["G"] and components["G"].direction == "AtoB"
    config, state = load_checkpoint(path)
    assert config["model"]["kind"] == "pix2pix"
    loaded = build_generator(config_from_dict(config), init=False)
    loaded.load_state_dict(state["G"])
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert max_diff(loaded, x, net(x)) < TOLERANCE


def test_unrecognisable_state_dict_is_a_one_line_error_naming_the_file(tmp_path):
    folder = bare_folder(tmp_path / "bare", {"encoder.layer1.weight": torch.zeros(2, 2)})
    with pytest.raises(ReferenceError) as err:
        load_bare_generator(folder / "latest_net_G.pth")
    message = str(err.value)
    assert "latest_net_G.pth: not a reference generator we recognise" in message and "encoder.layer1.weight" in message
    assert "\n" not in message


# --- one dispatcher for every folder ---------------------------------------------------------------------


def test_import_run_dispatches_each_kind_of_folder(cyclegan_dir, reference_dir, tmp_path):
    from pixforge.compat.pix2pixhd import config_from_hd_options

    hd = tmp_path / "hd"
    hd.mkdir()
    hd_opt = {"netG": "global", "ngf": "4", "label_nc": "0", "n_downsample_global": "2", "n_blocks_global": "1"}
    torch.save(build_generator(config_from_hd_options(hd_opt)).state_dict(), hd / "latest_net_G.pth")
    (hd / "opt.txt").write_text("".join(f"{k}: {v}\n" for k, v in hd_opt.items()))
    bare = bare_folder(tmp_path / "bare", pth(cyclegan_dir / "latest_net_G_A.pth"))
    cases = [(cyclegan_dir, "CycleGAN", ["G_A", "G_B", "D_A", "D_B"], "cyclegan"),
             (bare, "bare pretrained generator", ["G_A"], "cyclegan"),
             (reference_dir, "pix2pix", ["G", "D"], "pix2pix"),
             (hd, "pix2pixHD", ["G"], "pix2pixhd")]
    for i, (folder, what, parts, kind) in enumerate(cases):
        assert detect_kind(folder) == what
        path = import_run(folder, tmp_path / f"run{i}")
        assert list(read_components(path)) == parts
        assert load_checkpoint(path, only=parts[0])[0]["model"]["kind"] == kind


def test_folder_with_nothing_to_import_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReferenceError, match="not a checkpoint folder we can import"):
        import_run(tmp_path / "empty", tmp_path / "run")


def test_non_empty_out_folder_is_refused(cyclegan_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for importer in (import_run, import_cyclegan_run):
        with pytest.raises(ReferenceError, match="already exists and is not empty"):
            importer(cyclegan_dir, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_cli_import_reference_reads_a_pretrained_folder(cyclegan_dir, tmp_path, pixforge):
    bare = bare_folder(tmp_path / "bare", pth(cyclegan_dir / "latest_net_G_A.pth"))
    result = pixforge("import-reference", str(bare), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and list(read_components(find_checkpoint(tmp_path / "run"))) == ["G_A"]


def test_an_imported_run_translates_both_ways_through_translator_and_fine_tunes(cyclegan_dir, io, tmp_path,
                                                                                 unpaired_dataset):
    from pixforge.config import load_config
    from pixforge.infer.translator import Translator
    from pixforge.runtime.checkpoint import load_checkpoint
    from pixforge.train.loop import train

    run = tmp_path / "imported"
    import_run(cyclegan_dir, run)
    for direction, side in (("AtoB", "A"), ("BtoA", "B")):
        translator = Translator.from_pretrained(run, direction=direction, precision="fp32")
        out = translator.forward(io[f"input_{side}"])
        assert float((out - io[f"output_{side}"]).abs().max()) < 1e-5, direction
    # Fine-tuning: a new run that starts from all four imported networks.
    cfg = load_config(run / "config.yaml", {"data": {"root": str(unpaired_dataset), "load_size": 36, "crop_size": 32},
                                            "train": {"init_from": str(run), "max_steps": 1, "sample_every": 10}})
    result = train(cfg, tmp_path / "tuned")
    _, imported = load_checkpoint(run / "checkpoints" / "latest.safetensors")
    _, tuned = load_checkpoint(result.checkpoint)
    for net in ("G_A", "G_B", "D_A", "D_B"):
        key = next(k for k in imported[net] if k.endswith("weight"))
        assert (tuned[net][key] - imported[net][key]).abs().max() < 1e-2, f"{net} did not start from the import"
