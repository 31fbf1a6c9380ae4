"""Import checkpoints of the reference implementation (pytorch-CycleGAN-and-pix2pix).

A reference checkpoint folder holds ``latest_net_G.pth`` (and ``latest_net_D.pth``) as pickled state_dicts
and ``train_opt.txt``, the options it was trained with. We read the pickles with ``weights_only=True``
(plain tensors only, no code), rebuild the architecture from the options and rename the keys where our
layout differs (the U-Net; the ResNet generator and the discriminators share the reference's names).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixforge.atomic import write_text
from pixforge.config import Config, ConfigError, config_from_dict, read_text_file
from pixforge.nn.build import build_discriminator, build_generator
from pixforge.nn.unet import UnetGenerator
from pixforge.runtime.components import Components


class ReferenceError(ValueError):
    """A reference checkpoint folder is incomplete or uses options we cannot map; the message says which."""


_OPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w]*):\s*(.*?)\s*(?:\[default:.*\])?\s*$")
_NET_G = {"unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"}


def read_train_opt(path: Path) -> dict[str, str]:
    """Parse the reference's ``train_opt.txt`` (``name: value   [default: x]`` lines)."""
    options: dict[str, str] = {}
    try:
        text = read_text_file(path, "the reference's train_opt.txt")
    except ConfigError as err:
        raise ReferenceError(str(err)) from None
    for line in text.splitlines():
        match = _OPTION_LINE.match(line)
        if match and not line.lstrip().startswith("-"):
            options[match.group(1)] = match.group(2)
    return options


def is_run_of(folder: str | Path, marker: str, model: str) -> bool:
    """A reference run folder of ``model``: files matching ``marker`` (``*_net_G_A.pth``), or a ``train_opt.txt``
    saying ``model: MODEL``."""
    folder = Path(folder)
    if any(folder.glob(marker)):
        return True
    try:
        return (folder / "train_opt.txt").is_file() and read_train_opt(folder / "train_opt.txt").get("model") == model
    except ReferenceError:
        return False


def option_number(opt: dict[str, str], key: str, default: str, kind: type = int,
                  source: str = "train_opt.txt") -> Any:
    """Option ``key`` as a number (``default`` when absent); a one-line error naming ``source`` otherwise."""
    try:
        return kind(opt.get(key, default))
    except ValueError:
        raise ReferenceError(f"{source}: option '{key}' = '{opt.get(key)}' is not a number") from None


def options_to_dict(opt: dict[str, str], source: str = "train_opt.txt") -> dict[str, Any]:
    """The raw pixforge config sections (architecture, data, training) for a reference run's options; model
    kinds add their own fields (``compat.cyclegan``) before validating."""
    net_g = opt.get("netG", "unet_256")
    if not (net_g in _NET_G or re.fullmatch(r"unet_\d+|resnet_\d+blocks", net_g)):
        raise ReferenceError(f"{source}: netG '{net_g}' is not a pix2pix generator we can import")
    net_d = opt.get("netD", "basic")
    disc = {"basic": "patchgan", "n_layers": "patchgan", "pixel": "pixel"}.get(net_d)
    if disc is None:
        raise ReferenceError(f"{source}: netD '{net_d}' unknown (expected basic, n_layers or pixel)")
    n_layers = 3 if net_d == "basic" else option_number(opt, "n_layers_D", "3", int, source)

    def num(key: str, default: str, kind: type = int) -> Any:
        return option_number(opt, key, default, kind, source)

    data = {
        "direction": opt.get("direction", "AtoB"),
        "input_nc": num("input_nc", "3"),
        "output_nc": num("output_nc", "3"),
        "load_size": num("load_size", "286"),
        "crop_size": num("crop_size", "256"),
        "flip": opt.get("no_flip", "False") != "True",
    }
    if opt.get("preprocess") in ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"):
        data["preprocess"] = opt["preprocess"]
    gan_mode = opt.get("gan_mode", "vanilla")
    return {
        "name": re.sub(r"[^\w.-]", "_", opt.get("name", "imported")) or "imported",
        "model": {
            "generator": net_g, "discriminator": disc, "n_layers_d": n_layers,
            "ngf": num("ngf", "64"), "ndf": num("ndf", "64"), "norm": opt.get("norm", "batch"),
            "dropout": opt.get("no_dropout", "False") != "True",
            "init_gain": num("init_gain", "0.02", float),
        },
        "data": data,
        "loss": {"gan_mode": gan_mode if gan_mode in ("vanilla", "lsgan", "wgangp") else "vanilla",
                 "lambda_l1": num("lambda_L1", "100", float)},
        "train": {"lr": num("lr", "0.0002", float), "beta1": num("beta1", "0.5", float),
                  "batch_size": num("batch_size", "1"), "n_epochs": num("n_epochs", "100"),
                  "n_epochs_decay": num("n_epochs_decay", "100"), "pool_size": num("pool_size", "0")},
    }


def config_from_options(opt: dict[str, str], source: str = "train_opt.txt") -> Config:
    """The pixforge config equivalent to a reference pix2pix run's options (architecture, data and training)."""
    return config_from_dict(options_to_dict(opt, source), source)


def _unet_prefix(depth: int) -> str:
    """Key prefix of the reference's nested block at ``depth`` (0 = outermost)."""
    prefix = "model.model."
    for d in range(1, depth + 1):
        prefix += "1.model." if d == 1 else "3.model."
    return prefix


def unet_key_map(net: UnetGenerator) -> dict[str, str]:
    """Our U-Net parameter/buffer names -> the reference ``UnetSkipConnectionBlock`` names."""
    n = net.num_downs
    mapping: dict[str, str] = {}
    for name in net.state_dict():
        part, depth_s, layer_s, *rest = name.split(".")
        depth, layer, tail = int(depth_s), int(layer_s), ".".join(rest)
        prefix = _unet_prefix(depth)
        if depth == 0:  # outermost: [downconv, submodule, uprelu, upconv, tanh]
            ref_layer = {("down", 0): 0, ("up", 1): 3}[(part, layer)]
        elif depth == n - 1:  # innermost: [downrelu, downconv, uprelu, upconv, upnorm]
            ref_layer = {("down", 1): 1, ("up", 1): 3, ("up", 2): 4}[(part, layer)]
        else:  # [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, (dropout)]
            ref_layer = {("down", 1): 1, ("down", 2): 2, ("up", 1): 5, ("up", 2): 6}[(part, layer)]
        mapping[name] = f"{prefix}{ref_layer}.{tail}"
    return mapping


def _clean(state: dict[str, torch.Tensor], norm: str) -> dict[str, torch.Tensor]:
    out = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    if norm == "instance":  # old PyTorch saved running stats for InstanceNorm; the reference drops them
        out = {k: v for k, v in out.items() if not k.endswith(("running_mean", "running_var",
                                                                "num_batches_tracked"))}
    return out


def load_reference_state(net: nn.Module, state: dict[str, torch.Tensor], source: str, norm: str,
                         described_by: str = "train_opt.txt") -> None:
    """Copy a reference state_dict into our network, renaming keys where our layout differs.

    ``described_by`` names where the architecture came from, for the error messages."""
    state = _clean(state, norm)
    mapping = unet_key_map(net) if isinstance(net, UnetGenerator) else {k: k for k in net.state_dict()}
    ours = net.state_dict()
    missing = [ref for ref in mapping.values() if ref not in state]
    unused = sorted(set(state) - set(mapping.values()))
    if missing or unused:
        raise ReferenceError(
            f"{source}: does not match the architecture in {described_by} "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected {unused[:3]})")
    for name, ref in mapping.items():
        if ours[name].shape != state[ref].shape:
            raise ReferenceError(f"{source}: '{ref}' has shape {tuple(state[ref].shape)}, the architecture "
                                 f"in {described_by} expects {tuple(ours[name].shape)}")
    net.load_state_dict({name: state[ref] for name, ref in mapping.items()})


def _load_pth(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as err:
        raise ReferenceError(f"{path}: cannot be read as a weights-only state_dict ({err})") from None
    if not isinstance(state, dict):
        raise ReferenceError(f"{path}: expected a state_dict (a mapping of tensors)")
    return state


def _find(folder: Path, net: str, epoch: str) -> Path | None:
    path = folder / f"{epoch}_net_{net}.pth"
    return path if path.is_file() else None


def load_reference(folder: str | Path, epoch: str = "latest",
                   options: dict[str, str] | None = None) -> tuple[Config, nn.Module, nn.Module | None]:
    """Rebuild ``(config, G, D or None)`` from a reference checkpoint folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceError(f"{folder}: not a directory (expected a reference checkpoint folder)")
    g_path = _find(folder, "G", epoch)
    if g_path is None:
        raise ReferenceError(f"{folder}: no {epoch}_net_G.pth (a reference pix2pix checkpoint folder has one)")
    opt_path = folder / "train_opt.txt"
    opt = read_train_opt(opt_path) if opt_path.is_file() else {}
    opt.update(options or {})
    cfg = config_from_options(opt, str(opt_path))
    generator = build_generator(cfg, init=False)
    load_reference_state(generator, _load_pth(g_path), str(g_path), cfg.model.norm)
    discriminator = None
    d_path = _find(folder, "D", epoch)
    if d_path is not None:
        discriminator = build_discriminator(cfg, init=False)
        load_reference_state(discriminator, _load_pth(d_path), str(d_path), cfg.model.norm)
    return cfg, generator.eval(), discriminator


def check_new_run_dir(run_dir: str | Path) -> Path:
    """Importing writes a run's config and checkpoints: refuse a folder that already holds something."""
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ReferenceError(f"--out {run_dir}: already exists and is not empty; importing would replace its "
                             f"config and checkpoints; choose a new folder")
    return run_dir


def write_imported_run(run_dir: str | Path, cfg: Config, state: dict[str, Any],
                       components: Components | None = None) -> Path:
    """Write ``state`` as step 0 of a native run directory (config.yaml, checkpoint, ``latest`` pointer)."""
    from pixforge.runtime.checkpoint import checkpoint_name, point_latest, save_checkpoint

    run_dir = check_new_run_dir(run_dir)
    folder_out = run_dir / "checkpoints"
    state = {**state, "progress": {"step": 0, "epoch": 0}}
    path = save_checkpoint(folder_out / checkpoint_name(0), cfg.to_dict(), state, components=components)
    point_latest(folder_out, path)
    write_text(run_dir / "config.yaml", cfg.to_yaml())
    return path


def imported_from(folder: str | Path) -> str:
    # The folder's name only: an absolute path would leak the importer's directory layout when shared.
    return Path(folder).resolve().name


def import_reference_run(folder: str | Path, run_dir: str | Path, epoch: str = "latest") -> Path:
    """Write a native run directory (config.yaml + a weights-only checkpoint) for a reference folder."""
    check_new_run_dir(run_dir)
    cfg, generator, discriminator = load_reference(folder, epoch)
    state: dict[str, Any] = {"G": generator.state_dict(), "imported_from": imported_from(folder)}
    if discriminator is not None:
        state["D"] = discriminator.state_dict()
    return write_imported_run(run_dir, cfg, state)
