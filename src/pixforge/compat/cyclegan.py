"""Import CycleGAN runs and bare pretrained generators of the reference (pytorch-CycleGAN-and-pix2pix).

A CycleGAN run folder holds ``<epoch>_net_G_A.pth``, ``_G_B``, ``_D_A``, ``_D_B`` and ``train_opt.txt`` (``model:
cycle_gan``). G_A maps domain A to B, G_B maps B to A; D_A judges domain B images (real B against G_A(A)) and
D_B domain A images, each one image, not a pair. The ResNet generator and the PatchGAN keep the reference's
key names in pixforge; the U-Net's are renamed (``reference.unet_key_map``).

The reference's pretrained downloads (``scripts/download_cyclegan_model.sh``, ``download_pix2pix_model.sh``) are
a folder holding one ``latest_net_G.pth`` and no options: ``infer_generator_options`` reads the architecture from
the state_dict's keys and shapes alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixforge.compat.reference import (
    ReferenceError,
    _load_pth,
    _unet_prefix,
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
from pixforge.runtime.components import Component, Components

OPTIONS_FILE = "train_opt.txt"
CYCLEGAN_DEFAULTS = {"netG": "resnet_9blocks", "norm": "instance", "no_dropout": "True", "gan_mode": "lsgan",
                     "pool_size": "50", "lambda_A": "10", "lambda_B": "10", "lambda_identity": "0.5"}
"""What the reference's CycleGAN uses for options a folder does not record (``cycle_gan_model.py``'s
``modify_commandline_options`` and ``options/``)."""
NETWORKS = ("G_A", "G_B", "D_A", "D_B")
_RESNET_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")
_LAYER_WEIGHT = re.compile(r"^model\.(\d+)\.weight$")


def is_cyclegan_folder(folder: str | Path) -> bool:
    """A folder with ``*_net_G_A.pth`` files or a ``train_opt.txt`` saying ``model: cycle_gan``."""
    return is_run_of(folder, "*_net_G_A.pth", "cycle_gan")


def config_from_cyclegan_options(opt: dict[str, str], source: str = OPTIONS_FILE) -> Config:
    """The pixforge ``kind: cyclegan`` config of a reference CycleGAN run's options."""
    opt = {**CYCLEGAN_DEFAULTS, **opt}
    raw = options_to_dict(opt, source)
    raw["model"]["kind"] = "cyclegan"
    raw["data"]["serial_batches"] = opt.get("serial_batches", "False") == "True"
    raw["loss"].update({key: option_number(opt, name, "0", float, source) for key, name in
                        (("lambda_a", "lambda_A"), ("lambda_b", "lambda_B"), ("lambda_identity", "lambda_identity"))})
    return config_from_dict(raw, source)  # kind cyclegan fills the rest: unaligned layout, no val split


def cyclegan_components(cfg: Config) -> Components:
    """The four networks of a CycleGAN run and what each does."""
    a, b = cfg.data.input_nc, cfg.data.output_nc
    return {
        "G_A": Component("generator", direction="AtoB", input_nc=a, output_nc=b),
        "G_B": Component("generator", direction="BtoA", input_nc=b, output_nc=a),
        "D_A": Component("discriminator"),  # judges domain B: real B against G_A(A)
        "D_B": Component("discriminator"),  # judges domain A
    }


def build_cyclegan_networks(cfg: Config, names: tuple[str, ...] = NETWORKS, init: bool = False) -> dict[str, nn.Module]:
    """The networks ``names`` of a CycleGAN config, built as the reference's ``CycleGANModel`` builds them."""
    a, b = cfg.data.input_nc, cfg.data.output_nc
    makers = {
        "G_A": lambda: build_generator(cfg, init, input_nc=a, output_nc=b),
        "G_B": lambda: build_generator(cfg, init, input_nc=b, output_nc=a),
        "D_A": lambda: build_discriminator(cfg, init, input_nc=b),
        "D_B": lambda: build_discriminator(cfg, init, input_nc=a),
    }
    return {name: makers[name]() for name in names}


def load_cyclegan_reference(folder: str | Path, epoch: str = "latest") -> tuple[Config, dict[str, nn.Module]]:
    """Rebuild ``(config, {"G_A", "G_B"[, "D_A", "D_B"]})`` from a reference CycleGAN folder; generators in eval
    mode. Without D files only the generators are imported; without ``train_opt.txt`` the generators'
    architecture is read from G_A's keys and the discriminators' width from D_A's first convolution."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceError(f"{folder}: not a directory (expected a reference CycleGAN checkpoint folder)")
    paths = {name: folder / f"{epoch}_net_{name}.pth" for name in NETWORKS}
    for name in ("G_A", "G_B"):
        if not paths[name].is_file():
            raise ReferenceError(f"{folder}: no {paths[name].name} (a reference CycleGAN folder has "
                                 f"{epoch}_net_G_A.pth and {epoch}_net_G_B.pth)")
    has_d = [paths[name].is_file() for name in ("D_A", "D_B")]
    if any(has_d) and not all(has_d):
        missing = paths["D_B" if has_d[0] else "D_A"].name
        raise ReferenceError(f"{folder}: has one discriminator but no {missing}; CycleGAN needs both to fine-tune "
                             f"(remove the other to import the generators only)")
    names = NETWORKS if all(has_d) else ("G_A", "G_B")
    states = {name: _load_pth(paths[name]) for name in names}
    opt_path = folder / OPTIONS_FILE
    if opt_path.is_file():
        opt, described_by = read_train_opt(opt_path), OPTIONS_FILE
    else:
        opt, described_by = infer_generator_options(states["G_A"], str(paths["G_A"])), "its keys"
        if "D_A" in states and isinstance(states["D_A"].get("model.0.weight"), torch.Tensor):
            opt["ndf"] = str(states["D_A"]["model.0.weight"].shape[0])
    cfg = config_from_cyclegan_options(opt, str(opt_path))
    nets = build_cyclegan_networks(cfg, names)
    for name, net in nets.items():
        load_reference_state(net, states[name], str(paths[name]), cfg.model.norm, described_by)
    for name in ("G_A", "G_B"):
        nets[name].eval()
    return cfg, nets


def import_cyclegan_run(folder: str | Path, run_dir: str | Path, epoch: str = "latest") -> Path:
    """Write a native run directory for a reference CycleGAN folder: both generators (it translates both ways)
    and, where the folder has them, both discriminators (so training can resume from it)."""
    check_new_run_dir(run_dir)
    cfg, nets = load_cyclegan_reference(folder, epoch)
    state: dict[str, Any] = {name: net.state_dict() for name, net in nets.items()}
    state["imported_from"] = imported_from(folder)
    components = {name: c for name, c in cyclegan_components(cfg).items() if name in nets}
    return write_imported_run(run_dir, cfg, state, components)


# --- bare pretrained generators ---------------------------------------------------------------------------


def infer_generator_options(state_dict: dict[str, Any], source: str = "state_dict") -> dict[str, str]:
    """The reference options (``netG``, ``ngf``, ``input_nc``, ``output_nc``, ``norm``, ``no_dropout``) a generator
    state_dict was built with, read from its keys and shapes.

    ResNet: ``model.<k>.conv_block.*`` keys, one ``k`` per block; with dropout a block's second convolution is
    ``conv_block.6`` instead of ``.5``. U-Net: ``model.model.1.model.3.model...`` keys, one nesting level per
    downsampling. Batch norm keeps affine ``weight``s in its norm layers; instance norm (no affine) keeps none but
    gives the convolutions a bias (old PyTorch files may still hold InstanceNorm running statistics); ``none``
    has neither. A U-Net's dropout holds no weights, so it is left at pix2pix's default (on; off in eval).
    """
    state = {k.removeprefix("module."): v for k, v in state_dict.items()
             if isinstance(k, str) and isinstance(v, torch.Tensor)}
    # Convolutions only (4-d weights): with batch norm, ``conv_block.6.weight`` is the second norm's, not a conv.
    block_layers = [(int(m.group(1)), int(m.group(2))) for k, v in state.items()
                    if (m := _RESNET_BLOCK.match(k)) and v.dim() == 4]
    first = state.get("model.1.weight")
    if block_layers and first is not None and first.dim() == 4:
        n_blocks = len({block for block, _ in block_layers})
        dropout = any(layer == 6 for _, layer in block_layers)
        last = max(int(m.group(1)) for k in state if (m := _LAYER_WEIGHT.match(k)))
        options = {"netG": f"resnet_{n_blocks}blocks", "ngf": str(first.shape[0]), "input_nc": str(first.shape[1]),
                   "output_nc": str(state[f"model.{last}.weight"].shape[0]),
                   "norm": _norm(state, "model.2.weight", "model.1.bias"), "no_dropout": str(not dropout)}
        # CUT's anti-aliased layers keep their blur kernels: 3x3 to downsample, 4x4 to upsample.
        blurs = {v.shape[-1] for k, v in state.items() if k.endswith(".filt") and v.dim() == 4}
        if blurs:
            options.update({"model": "cut", "normG": options["norm"], "normD": options["norm"],
                            "no_antialias": str(3 not in blurs), "no_antialias_up": str(4 not in blurs)})
        return options
    first = state.get("model.model.0.weight")
    outer_up = state.get("model.model.3.weight")
    if first is not None and outer_up is not None and first.dim() == 4 and outer_up.dim() == 4:
        depth = 0
        while any(k.startswith(_unet_prefix(depth + 1)) for k in state):
            depth += 1
        return {"netG": f"unet_{2 ** (depth + 1)}", "ngf": str(first.shape[0]), "input_nc": str(first.shape[1]),
                "output_nc": str(outer_up.shape[1]),  # ConvTranspose2d weights are (in, out, k, k)
                "norm": _norm(state, f"{_unet_prefix(1)}2.weight", "model.model.0.bias"), "no_dropout": "False"}
    shown = ", ".join(list(state_dict)[:3]) if state_dict else "none"
    raise ReferenceError(f"{source}: not a reference generator we recognise ({len(state_dict)} keys: {shown}"
                         f"{', ...' if len(state_dict) > 3 else ''}); expected a ResNet (model.<k>.conv_block.* keys) "
                         f"or a U-Net (model.model.* keys)")


def _norm(state: dict[str, torch.Tensor], norm_weight: str, conv_bias: str) -> str:
    if norm_weight in state:
        return "batch"
    return "instance" if conv_bias in state else "none"


def is_bare_generator_folder(folder: str | Path, epoch: str = "latest") -> bool:
    """A pretrained download: ``<epoch>_net_G.pth`` and no options file of either reference."""
    folder = Path(folder)
    return (folder / f"{epoch}_net_G.pth").is_file() and not any(
        (folder / name).is_file() for name in (OPTIONS_FILE, "opt.txt"))


def load_bare_generator(pth_path: str | Path, kind: str | None = None,
                        options: Mapping[str, str] | None = None) -> tuple[Config, nn.Module]:
    """``(config, generator in eval mode)`` for a generator file without options. ``kind`` None: ``cut`` for an
    anti-aliased ResNet (the CUT downloads), ``cyclegan`` for another ResNet (what the CycleGAN downloads hold),
    ``pix2pix`` for a U-Net (the pix2pix downloads). ``options``: reference options the weights cannot tell
    (``CUT_mode: FastCUT``), over the inferred ones."""
    pth_path = Path(pth_path)
    state = _load_pth(pth_path)
    opt = {**infer_generator_options(state, str(pth_path)), **(options or {})}
    kind = kind or opt.get("model") or ("cyclegan" if opt["netG"].startswith("resnet") else "pix2pix")
    opt["name"] = pth_path.resolve().parent.name
    if kind == "cut":
        from pixforge.compat.cut import config_from_cut_options

        cfg = config_from_cut_options(opt, str(pth_path))
    elif kind == "cyclegan":
        if opt["input_nc"] != opt["output_nc"]:
            opt["lambda_identity"] = "0"  # the identity loss feeds B to G_A: equal channels only
        cfg = config_from_cyclegan_options(opt, str(pth_path))
    elif kind == "pix2pix":
        cfg = config_from_dict(options_to_dict(opt, str(pth_path)), str(pth_path))
    else:
        raise ReferenceError(f"{pth_path}: kind '{kind}' unknown for a bare generator (expected cyclegan, cut or "
                             f"pix2pix)")
    generator = build_generator(cfg, init=False)
    load_reference_state(generator, state, str(pth_path), cfg.model.norm, "its keys")
    return cfg, generator.eval()


def import_bare_generator(pth_path: str | Path, run_dir: str | Path, name: str | None = None,
                          kind: str | None = None, options: Mapping[str, str] | None = None) -> Path:
    """Write a run whose only component is the generator of ``pth_path``: ``G_A`` (AtoB) of a ``kind: cyclegan``
    config for a CycleGAN download, ``G`` (AtoB) of a ``kind: cut`` config for a CUT one and of a pix2pix config
    for a pix2pix one (``kind`` None: by architecture, and ``options``, as ``load_bare_generator``)."""
    check_new_run_dir(run_dir)
    cfg, generator = load_bare_generator(pth_path, kind, options)
    name = name or ("G_A" if cfg.model.kind == "cyclegan" else "G")
    channels = {} if cfg.model.kind == "pix2pix" else {"input_nc": cfg.data.input_nc, "output_nc": cfg.data.output_nc}
    component = Component("generator", direction="AtoB", **channels)
    state = {name: generator.state_dict(), "imported_from": imported_from(Path(pth_path).parent)}
    return write_imported_run(run_dir, cfg, state, {name: component})


def import_bare_folder(folder: str | Path, run_dir: str | Path, epoch: str = "latest") -> Path:
    """``import_bare_generator`` for a pretrained download folder (``<epoch>_net_G.pth`` alone)."""
    return import_bare_generator(Path(folder) / f"{epoch}_net_G.pth", run_dir)
