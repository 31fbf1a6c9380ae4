"""Parity with the reference pytorch-CycleGAN-and-pix2pix code.

The shared fixture is a real reference checkpoint with outputs the reference computed. For the options
the fixture does not cover (unet_128, resnet, instance norm, other n_layers) the reference's own network
classes are re-stated below, in its nested layout and key names, so their state_dicts are genuine
reference-format checkpoints.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixforge.compat.reference import ReferenceError, import_reference_run, load_reference, read_train_opt
from pixforge.infer.translator import Translator

# --- the reference's classes (networks.py of pytorch-CycleGAN-and-pix2pix), condensed -------------------


def ref_norm(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda c: nn.Identity()


class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = isinstance(norm_layer, functools.partial) and norm_layer.func == nn.InstanceNorm2d
        input_nc = input_nc or outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), norm_layer(inner_nc)
        uprelu, upnorm = nn.ReLU(True), norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                  norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def reference_patchgan(x: torch.Tensor, sd: dict[str, torch.Tensor], n_layers: int) -> torch.Tensor:
    """The reference NLayerDiscriminator, evaluated functionally from its raw state_dict (eval mode)."""
    def bn(h, i):
        return F.batch_norm(h, sd[f"model.{i}.running_mean"], sd[f"model.{i}.running_var"],
                            sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], training=False)

    h = F.leaky_relu(F.conv2d(x, sd["model.0.weight"], sd["model.0.bias"], 2, 1), 0.2)
    i = 2
    for n in range(1, n_layers + 1):
        h = F.conv2d(h, sd[f"model.{i}.weight"], None, 2 if n < n_layers else 1, 1)
        h = F.leaky_relu(bn(h, i + 1), 0.2)
        i += 3
    return F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], 1, 1)


def write_reference_folder(folder: Path, net_g: nn.Module, options: dict[str, str],
                           net_d: nn.Module | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net_g.state_dict(), folder / "latest_net_G.pth")
    if net_d is not None:
        torch.save(net_d.state_dict(), folder / "latest_net_D.pth")
    lines = ["----------------- Options ---------------"]
    lines += [f"{k:>25}: {v:<30}\t[default: x]" for k, v in options.items()]
    (folder / "train_opt.txt").write_text("\n".join([*lines, "----------------- End -------------------"]))
    return folder


def randomise_bn_stats(net: nn.Module) -> None:
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


# --- the shared fixture: a real reference checkpoint ------------------------------------------------------


def test_reference_generator_reproduces_reference_outputs(reference_dir):
    io = torch.load(reference_dir / "io_eval.pt", weights_only=True)
    translator = Translator.from_reference(reference_dir, device="cpu", precision="fp32")
    out = translator.forward(io["input"])
    assert (out - io["output"]).abs().max().item() < 1e-5


def test_reference_discriminator_matches_reference_layers(reference_dir):
    io = torch.load(reference_dir / "io_eval.pt", weights_only=True)
    _, _, d = load_reference(reference_dir)
    assert d is not None
    raw = torch.load(reference_dir / "latest_net_D.pth", weights_only=True)
    pair = torch.cat([io["input"], io["output"]], 1)  # D sees (label map, photo)
    with torch.no_grad():
        ours = d.eval()(pair)
    expected = reference_patchgan(pair, raw, n_layers=3)
    assert ours.shape == (3, 1, 30, 30)
    assert (ours - expected).abs().max().item() < 1e-5


def test_train_opt_is_read_into_config(reference_dir):
    opt = read_train_opt(reference_dir / "train_opt.txt")
    assert opt["netG"] == "unet_256" and opt["direction"] == "BtoA" and opt["ngf"] == "16"
    cfg, _, _ = load_reference(reference_dir)
    assert (cfg.model.ngf, cfg.model.ndf, cfg.data.direction, cfg.model.dropout) == (16, 16, "BtoA", True)


def test_import_reference_writes_a_run_that_translates_identically(reference_dir, tmp_path):
    io = torch.load(reference_dir / "io_eval.pt", weights_only=True)
    import_reference_run(reference_dir, tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").is_file()
    out = Translator.from_pretrained(tmp_path / "run", device="cpu", precision="fp32").forward(io["input"])
    assert (out - io["output"]).abs().max().item() < 1e-5


# --- other reference options ----------------------------------------------------------------------------


@pytest.mark.parametrize(("net_g", "norm", "downs"), [("unet_128", "batch", 7), ("unet_256", "instance", 8)])
def test_reference_unet_variants_import_exactly(tmp_path, net_g, norm, downs):
    torch.manual_seed(0)
    ref = RefUnet(1, 3, downs, 8, ref_norm(norm), use_dropout=True)
    randomise_bn_stats(ref)
    ref.eval()
    folder = write_reference_folder(tmp_path / "ref", ref, {"netG": net_g, "ngf": "8", "norm": norm,
                                                           "input_nc": "1", "output_nc": "3"})
    x = torch.randn(2, 1, 2**downs, 2**downs)
    with torch.no_grad():
        expected = ref(x)
    out = Translator.from_reference(folder, device="cpu", precision="fp32").forward(x)
    assert (out - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize(("blocks", "norm"), [(9, "batch"), (6, "instance")])
def test_reference_resnet_import_exactly(tmp_path, blocks, norm):
    from pixforge.nn.resnet import ResnetGenerator

    torch.manual_seed(0)
    # The reference's ResnetGenerator is one flat Sequential; our class states it identically, so the
    # check is that a state_dict keyed as the reference keys it loads and computes the same function.
    ref = ResnetGenerator(3, 3, 8, norm, False, n_blocks=blocks)
    randomise_bn_stats(ref)
    keys = list(ref.state_dict())
    assert keys[0] == "model.1.weight" and any(k.startswith("model.10.conv_block.1.") for k in keys)
    folder = write_reference_folder(tmp_path / "ref", ref.eval(),
                                    {"netG": f"resnet_{blocks}blocks", "ngf": "8", "norm": norm,
                                     "no_dropout": "True"})
    x = torch.randn(1, 3, 36, 44)
    with torch.no_grad():
        expected = ref(x)
    out = Translator.from_reference(folder, device="cpu", precision="fp32").forward(x)
    assert out.shape == x.shape
    assert (out - expected).abs().max().item() < 1e-5


def test_reference_n_layers_discriminator_imports(tmp_path):
    from pixforge.nn.discriminators import PatchDiscriminator

    torch.manual_seed(0)
    d = PatchDiscriminator(6, 8, n_layers=4)
    randomise_bn_stats(d)
    g = RefUnet(3, 3, 5, 4, ref_norm("batch"), False)
    folder = write_reference_folder(tmp_path / "ref", g, {"netG": "unet_32", "ngf": "4", "ndf": "8",
                                                         "netD": "n_layers", "n_layers_D": "4"}, d)
    _, _, loaded = load_reference(folder)
    x = torch.randn(1, 6, 64, 64)
    expected = reference_patchgan(x, d.state_dict(), n_layers=4)
    with torch.no_grad():
        assert (loaded.eval()(x) - expected).abs().max().item() < 1e-5


def test_mismatched_options_name_the_checkpoint_and_key(tmp_path):
    g = RefUnet(3, 3, 7, 8, ref_norm("batch"), False)
    folder = write_reference_folder(tmp_path / "ref", g, {"netG": "unet_256", "ngf": "8"})
    with pytest.raises(ReferenceError, match="latest_net_G.pth: does not match the architecture"):
        load_reference(folder)


def test_missing_generator_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReferenceError, match="no latest_net_G.pth"):
        load_reference(tmp_path)


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "ref"
    folder.mkdir()
    torch.save({"x": Evil()}, folder / "latest_net_G.pth")
    with pytest.raises(ReferenceError, match="weights-only"):
        load_reference(folder)
