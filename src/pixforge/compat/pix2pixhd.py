"""Import checkpoints of the reference pix2pixHD (NVIDIA/pix2pixHD): ``<epoch>_net_G.pth`` (+ ``_net_D``,
``_net_E``) and ``opt.txt``.

The pickles are read with ``weights_only=True`` (tensors only, no code). pixforge's ``global``/``local`` generators
and feature encoder use the reference's parameter names, so they load as saved; the multi-scale discriminator's
names are mapped (``scale{i}_layer{j}`` -> ``scales.<num_D-1-i>.layers.<j>``: the reference numbers its
full-resolution PatchGAN last, pixforge first).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixforge.compat.reference import ReferenceError, _load_pth, read_train_opt
from pixforge.config import Config, config_from_dict
from pixforge.nn.build import build_discriminator, build_feature_encoder, build_generator
from pixforge.nn.feature_encoder import FeatureEncoder
from pixforge.nn.multiscale import MultiscaleDiscriminator

OPTIONS_FILE = "opt.txt"
_NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
_PREPROCESS = {"resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"}


def is_pix2pixhd_folder(folder: str | Path) -> bool:
    """pix2pixHD writes ``opt.txt``; pytorch-CycleGAN-and-pix2pix writes ``train_opt.txt``."""
    folder = Path(folder)
    return (folder / OPTIONS_FILE).is_file() and not (folder / "train_opt.txt").is_file()


def config_from_hd_options(opt: dict[str, str], source: str = OPTIONS_FILE) -> Config:
    """The pixforge config of a pix2pixHD run's options (architecture, data, losses and schedule)."""

    def num(key: str, default: str, kind: type = int) -> Any:
        try:
            return kind(opt.get(key, default))
        except ValueError:
            raise ReferenceError(f"{source}: option '{key}' = '{opt.get(key)}' is not a number") from None

    def flag(key: str) -> bool:
        return opt.get(key, "False") == "True"

    net_g = opt.get("netG", "global")
    if net_g not in ("global", "local"):
        raise ReferenceError(f"{source}: netG '{net_g}' is not a pix2pixHD generator we can import (global, local)")
    norm = opt.get("norm", "instance")
    if norm not in ("instance", "batch"):
        raise ReferenceError(f"{source}: norm '{norm}' unknown (expected instance or batch)")
    label_nc = num("label_nc", "35")
    instance = not flag("no_instance") and label_nc > 0
    features = flag("instance_feat") or flag("label_feat")
    lambda_feat = num("lambda_feat", "10", float)
    data: dict[str, Any] = {
        "label_nc": label_nc, "instance_maps": instance, "input_nc": num("input_nc", "3"),
        "output_nc": num("output_nc", "3"), "load_size": num("loadSize", "1024"), "crop_size": num("fineSize", "512"),
        "flip": not flag("no_flip"), "preprocess": opt.get("resize_or_crop", "scale_width"),
    }
    if data["preprocess"] not in _PREPROCESS:
        raise ReferenceError(f"{source}: resize_or_crop '{data['preprocess']}' unknown")
    if label_nc:
        data["layout"] = "pix2pixhd"
    if data["preprocess"] in ("resize_and_crop", "scale_width_and_crop"):
        data["load_size"] = max(data["load_size"], data["crop_size"])
    return config_from_dict({
        "name": re.sub(r"[^\w.-]", "_", opt.get("name", "imported")) or "imported",
        "model": {
            "kind": "pix2pixhd", "generator": net_g, "discriminator": "multiscale", "norm": norm,
            "dropout": flag("use_dropout"), "ngf": num("ngf", "64"), "ndf": num("ndf", "64"),
            "n_layers_d": num("n_layers_D", "3"), "num_d": num("num_D", "2"),
            "n_downsample_global": num("n_downsample_global", "4"), "n_blocks_global": num("n_blocks_global", "9"),
            "n_local_enhancers": num("n_local_enhancers", "1"), "n_blocks_local": num("n_blocks_local", "3"),
            "features": features, "feat_num": num("feat_num", "3"), "nef": num("nef", "16"),
            "n_downsample_e": num("n_downsample_E", "4"),
        },
        "data": data,
        "loss": {
            "gan_mode": "vanilla" if flag("no_lsgan") else "lsgan",
            "lambda_feat": 0.0 if flag("no_ganFeat_loss") else lambda_feat,
            "vgg_loss": not flag("no_vgg_loss"), "lambda_vgg": lambda_feat,  # the reference scales VGG by lambda_feat
        },
        "train": {
            "lr": num("lr", "0.0002", float), "beta1": num("beta1", "0.5", float), "batch_size": num("batchSize", "1"),
            "n_epochs": num("niter", "100"), "n_epochs_decay": num("niter_decay", "100"),
            "niter_fix_global": num("niter_fix_global", "0"), "pool_size": num("pool_size", "0"),
        },
    }, source)


def discriminator_key_map(net: MultiscaleDiscriminator, state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Our multiscale D's names -> the reference's (``scale{i}_layer{j}.k`` with feature matching on,
    ``layer{i}.k`` over one flat Sequential per scale with ``--no_ganFeat_loss``)."""
    num_d = len(net.scales)
    flat = not any(k.startswith("scale") for k in state)
    mapping = {}
    for name in net.state_dict():
        _, s, _, j, rest = name.split(".", 4)
        ref_scale, layer = num_d - 1 - int(s), int(j)
        if flat:
            first = _flat_offset(net.scales[int(s)].layers, layer)
            k, tail = rest.split(".", 1)
            mapping[name] = f"layer{ref_scale}.{first + int(k)}.{tail}"
        else:
            mapping[name] = f"scale{ref_scale}_layer{layer}.{rest}"
    return mapping


def _flat_offset(layers: nn.ModuleList, index: int) -> int:
    return sum(len(layers[i]) for i in range(index))


def load_hd_state(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy a reference state_dict into our network (names mapped for the discriminator)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    ours = net.state_dict()
    mapping = discriminator_key_map(net, state) if isinstance(net, MultiscaleDiscriminator) else {k: k for k in ours}
    used = set(mapping.values())
    # Old PyTorch saved running statistics for InstanceNorm; the reference's instance norms keep none.
    state = {k: v for k, v in state.items() if k in used or not k.endswith(_NORM_STATISTICS)}
    missing = [ref for ref in mapping.values() if ref not in state]
    unused = sorted(set(state) - set(mapping.values()))
    if missing or unused:
        raise ReferenceError(f"{source}: does not match the architecture in {OPTIONS_FILE} "
                             f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected {unused[:3]})")
    for name, ref in mapping.items():
        if ours[name].shape != state[ref].shape:
            raise ReferenceError(f"{source}: '{ref}' has shape {tuple(state[ref].shape)}, the architecture in "
                                 f"{OPTIONS_FILE} expects {tuple(ours[name].shape)}")
    net.load_state_dict({name: state[ref] for name, ref in mapping.items()})


def load_hd_reference(folder: str | Path, epoch: str = "latest", options: dict[str, str] | None = None
                      ) -> tuple[Config, nn.Module, nn.Module | None, FeatureEncoder | None]:
    """Rebuild ``(config, G, D or None, E or None)`` from a pix2pixHD checkpoint folder.

    ``options`` override (or, for a folder without ``opt.txt``, supply) the reference's options by name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceError(f"{folder}: not a directory (expected a pix2pixHD checkpoint folder)")
    g_path = folder / f"{epoch}_net_G.pth"
    if not g_path.is_file():
        raise ReferenceError(f"{folder}: no {epoch}_net_G.pth (a pix2pixHD checkpoint folder has one)")
    opt_path = folder / OPTIONS_FILE
    opt = read_train_opt(opt_path) if opt_path.is_file() else {}
    opt.update(options or {})
    cfg = config_from_hd_options(opt, str(opt_path))
    generator = build_generator(cfg, init=False)
    load_hd_state(generator, _load_pth(g_path), str(g_path))
    discriminator = encoder = None
    d_path = folder / f"{epoch}_net_D.pth"
    if d_path.is_file():
        discriminator = build_discriminator(cfg, init=False)
        load_hd_state(discriminator, _load_pth(d_path), str(d_path))
    e_path = folder / f"{epoch}_net_E.pth"
    if cfg.model.features:
        if not e_path.is_file():
            raise ReferenceError(f"{folder}: {OPTIONS_FILE} says instance features are on but there is no "
                                 f"{epoch}_net_E.pth (the feature encoder)")
        encoder = build_feature_encoder(cfg, init=False)
        load_hd_state(encoder, _load_pth(e_path), str(e_path))
    return cfg, generator.eval(), discriminator, encoder


def import_hd_run(folder: str | Path, run_dir: str | Path, epoch: str = "latest",
                  options: dict[str, str] | None = None) -> Path:
    """Write a native run directory (config.yaml + a weights-only checkpoint) for a pix2pixHD folder."""
    from pixforge.runtime.checkpoint import checkpoint_name, point_latest, save_checkpoint

    cfg, generator, discriminator, encoder = load_hd_reference(folder, epoch, options)
    run_dir = Path(run_dir)
    out = run_dir / "checkpoints"
    state: dict[str, Any] = {"G": generator.state_dict(), "progress": {"step": 0, "epoch": 0},
                             "imported_from": str(Path(folder).resolve())}
    if discriminator is not None:
        state["D"] = discriminator.state_dict()
    if encoder is not None:
        state["E"] = encoder.state_dict()
    path = save_checkpoint(out / checkpoint_name(0), cfg.to_dict(), state)
    point_latest(out, path)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    return path
