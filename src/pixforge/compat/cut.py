"""Import run folders and pretrained generators of the CUT authors' code (taesungp/contrastive-unpaired-translation).

A run folder holds ``<epoch>_net_G.pth`` (the anti-aliased ResNet generator: its ``Downsample``/``Upsample``
layers keep the blur kernel as ``filt`` buffers), ``_net_F.pth`` (PatchNCE's projection heads, ``mlp_<i>``),
``_net_D.pth`` (an anti-aliased PatchGAN) and ``train_opt.txt`` (``model: cut``, ``CUT_mode``). Keys may carry
the ``module.`` prefix their code writes on a CPU. Key names are the same in pixforge; the heads are rebuilt
from G's layer widths, which the authors' code learns on its first forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from pixforge.compat.reference import (
    ReferenceError,
    _load_pth,
    check_new_run_dir,
    imported_from,
    is_run_of,
    load_reference_state,
    option_number,
    options_to_dict,
    read_train_opt,
    write_imported_run,
)
from pixforge.config import Config, config_from_dict
from pixforge.nn.build import build_discriminator, build_generator
from pixforge.nn.patch_nce import PatchProjector, feature_channels
from pixforge.runtime.components import Component, Components

OPTIONS_FILE = "train_opt.txt"
CUT_DEFAULTS = {"netG": "resnet_9blocks", "normG": "instance", "normD": "instance", "no_dropout": "True",
                "gan_mode": "lsgan", "init_type": "xavier", "pool_size": "0", "CUT_mode": "CUT",
                "nce_layers": "0,4,8,12,16", "num_patches": "256", "netF": "mlp_sample", "netF_nc": "256",
                "nce_T": "0.07", "lambda_GAN": "1.0", "no_antialias": "False", "no_antialias_up": "False"}
"""The authors' defaults (``options/`` and ``cut_model.py``) for options a folder does not record; λ_NCE,
nce_idt, flip_equivariance and the epochs follow ``CUT_mode`` (``config.KIND_DEFAULTS``)."""


def is_cut_folder(folder: str | Path) -> bool:
    """A folder with ``*_net_F.pth`` files or a ``train_opt.txt`` saying ``model: cut``."""
    return is_run_of(folder, "*_net_F.pth", "cut")


def config_from_cut_options(opt: dict[str, str], source: str = OPTIONS_FILE) -> Config:
    """The pixforge ``kind: cut`` config of the authors' options."""
    given = dict(opt)
    opt = {**CUT_DEFAULTS, **opt}
    if opt["normG"] != opt["normD"]:
        raise ReferenceError(f"{source}: normG '{opt['normG']}' and normD '{opt['normD']}' differ; pixforge gives "
                             f"G and D one model.norm")
    if opt["netF"] != "mlp_sample":
        raise ReferenceError(f"{source}: netF '{opt['netF']}' is not supported (expected mlp_sample, the default)")
    mode = opt["CUT_mode"].lower()
    if mode not in ("cut", "fastcut"):
        raise ReferenceError(f"{source}: CUT_mode '{opt['CUT_mode']}' unknown (expected CUT or FastCUT)")
    raw = options_to_dict({**opt, "norm": opt["normG"]}, source)

    def num(key: str, kind: type = float) -> Any:
        return option_number(opt, key, opt.get(key, "0"), kind, source)

    try:
        layers = [int(x) for x in opt["nce_layers"].split(",")]
    except ValueError:
        raise ReferenceError(f"{source}: nce_layers '{opt['nce_layers']}' is not a comma-separated list of "
                             f"layer indices") from None
    raw["model"].update({
        "kind": "cut", "cut_mode": mode, "nce_layers": layers, "num_patches": num("num_patches", int),
        "nce_head_nc": num("netF_nc", int), "init_type": opt["init_type"] if opt["init_type"] == "xavier" else "normal",
        "downsample": "strided" if opt["no_antialias"] == "True" else "antialias",
        "upsample": "transposed" if opt["no_antialias_up"] == "True" else "antialias",
    })
    raw["loss"] = {"gan_mode": raw["loss"]["gan_mode"], "lambda_gan": num("lambda_GAN"), "nce_t": num("nce_T")}
    # Options a folder records override the mode's defaults; absent ones keep them.
    for key, name, kind in (("lambda_nce", "lambda_NCE", float), ("nce_idt", "nce_idt", bool),
                            ("flip_equivariance", "flip_equivariance", bool)):
        if name in given:
            raw["loss"][key] = given[name] == "True" if kind is bool else num(name)
    for key in ("n_epochs", "n_epochs_decay"):
        if key not in given:
            del raw["train"][key]
    return config_from_dict(raw, source)  # kind cut fills the rest: unaligned layout, no jitter when decaying


def cut_components(cfg: Config) -> Components:
    return {"G": Component("generator", direction="AtoB", input_nc=cfg.data.input_nc, output_nc=cfg.data.output_nc),
            "F": Component("head"), "D": Component("discriminator")}


def build_cut_networks(cfg: Config, names: tuple[str, ...] = ("G", "F", "D"), init: bool = False
                       ) -> dict[str, nn.Module]:
    """The networks ``names`` of a CUT config, as the recipe builds them (F from G's layer widths)."""
    g = build_generator(cfg, init, input_nc=cfg.data.input_nc, output_nc=cfg.data.output_nc)
    nets: dict[str, nn.Module] = {"G": g}
    if "F" in names:
        channels = feature_channels(g, cfg.model.nce_layers, cfg.data.input_nc)
        nets["F"] = PatchProjector(channels, cfg.model.nce_head_nc)
    if "D" in names:
        nets["D"] = build_discriminator(cfg, init, input_nc=cfg.data.output_nc)
    return nets


def load_cut_reference(folder: str | Path, epoch: str = "latest") -> tuple[Config, dict[str, nn.Module]]:
    """Rebuild ``(config, {"G"[, "F", "D"]})`` from an authors' CUT folder; G in eval mode. F and D come along
    where the folder has both (what fine-tuning needs)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceError(f"{folder}: not a directory (expected a CUT checkpoint folder)")
    paths = {name: folder / f"{epoch}_net_{name}.pth" for name in ("G", "F", "D")}
    if not paths["G"].is_file():
        raise ReferenceError(f"{folder}: no {paths['G'].name} (a CUT checkpoint folder has {epoch}_net_G.pth, "
                             f"_F and _D with train_opt.txt)")
    has = [paths[name].is_file() for name in ("F", "D")]
    if any(has) and not all(has):
        missing = paths["D" if has[0] else "F"].name
        raise ReferenceError(f"{folder}: has one of F and D but no {missing}; fine-tuning needs both (remove the "
                             f"other to import the generator only)")
    names = ("G", "F", "D") if all(has) else ("G",)
    opt_path = folder / OPTIONS_FILE
    opt = read_train_opt(opt_path) if opt_path.is_file() else {}
    cfg = config_from_cut_options(opt, str(opt_path))
    nets = build_cut_networks(cfg, names)
    described_by = OPTIONS_FILE if opt else "the CUT defaults"
    for name, net in nets.items():
        load_reference_state(net, _load_pth(paths[name]), str(paths[name]), cfg.model.norm, described_by)
    nets["G"].eval()
    return cfg, nets


def import_cut_run(folder: str | Path, run_dir: str | Path, epoch: str = "latest") -> Path:
    """Write a native run directory for an authors' CUT folder: G (it translates A to B) and, where the folder
    has them, F and D (so training can resume from it)."""
    check_new_run_dir(run_dir)
    cfg, nets = load_cut_reference(folder, epoch)
    state: dict[str, Any] = {name: net.state_dict() for name, net in nets.items()}
    state["imported_from"] = imported_from(folder)
    components = {name: c for name, c in cut_components(cfg).items() if name in nets}
    return write_imported_run(run_dir, cfg, state, components)
