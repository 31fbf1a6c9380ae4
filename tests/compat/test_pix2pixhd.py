"""Import of reference pix2pixHD checkpoints (acceptance 2 of the pix2pixHD issue).

The shared fixture is a generator the reference code made, with outputs it computed. For what the fixture does not
cover (``local`` generators, the multi-scale D, opt.txt) the reference's layout is re-stated below in condensed
form: its module names (``model``, ``model1_1``, ``scale0_layer0`` ...) and its forward order, so the state_dicts
are reference-format checkpoints and the outputs what the reference computes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pixforge.compat.pix2pixhd import (
    config_from_hd_options,
    import_hd_run,
    is_pix2pixhd_folder,
    load_hd_reference,
)
from pixforge.compat.reference import ReferenceError
from pixforge.runtime.checkpoint import load_checkpoint

FIXTURE = "hd_global_ngf8"


@pytest.fixture(scope="module")
def hd_fixture(shared: Path) -> Path:
    folder = shared / "fixtures" / "reference-pix2pixhd"
    if not (folder / f"{FIXTURE}_net_G.pth").is_file():
        pytest.skip(f"{folder} not present")
    return folder


def fixture_options(io: dict) -> dict[str, str]:
    """The fixture has no opt.txt; its io file records define_G's arguments (13 one-hot channels, no instances)."""
    return {"netG": io["netG"], "ngf": str(io["ngf"]), "label_nc": str(io["input_nc"]), "no_instance": "True",
            "output_nc": str(io["output_nc"]), "norm": io["norm"],
            "n_downsample_global": str(io["n_downsample_global"]), "n_blocks_global": str(io["n_blocks_global"])}


def test_reference_global_generator_reproduces_the_reference_outputs(hd_fixture):
    io = torch.load(hd_fixture / f"{FIXTURE}_io.pt", weights_only=True)
    cfg, generator, discriminator, encoder = load_hd_reference(hd_fixture, FIXTURE, fixture_options(io))
    assert cfg.model.generator == "global" and cfg.data.input_channels == 13
    assert sum(p.numel() for p in generator.parameters()) == 2_858_995  # as the fixture's README states
    assert discriminator is None and encoder is None
    with torch.inference_mode():
        out = generator(io["input"])
    assert (out - io["output"]).abs().max().item() < 1e-5


def test_reference_folder_becomes_a_native_run_with_the_same_outputs(hd_fixture, tmp_path):
    from pixforge.config import config_from_dict
    from pixforge.nn.build import build_generator

    io = torch.load(hd_fixture / f"{FIXTURE}_io.pt", weights_only=True)
    path = import_hd_run(hd_fixture, tmp_path / "run", FIXTURE, fixture_options(io))
    raw, state = load_checkpoint(path)
    generator = build_generator(config_from_dict(raw), init=False)
    generator.load_state_dict(state["G"])
    with torch.inference_mode():
        assert (generator.eval()(io["input"]) - io["output"]).abs().max().item() < 1e-5
    assert (tmp_path / "run" / "config.yaml").is_file()


# --- the reference's layout, condensed (NVIDIA/pix2pixHD models/networks.py) ----------------------------------

def ref_resblock(dim: int) -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

        def forward(self, x):
            return x + self.conv_block(x)

    return Block()


def ref_global_layers(input_nc, output_nc, ngf, downs, blocks):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(downs):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
    layers += [ref_resblock(ngf * 2**downs) for _ in range(blocks)]
    for i in range(downs):
        c = ngf * 2 ** (downs - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
    return [*layers, nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]


class RefLocalEnhancer(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, downs, blocks, n_local, blocks_local):
        super().__init__()
        self.n_local = n_local
        self.model = nn.Sequential(*ref_global_layers(input_nc, output_nc, ngf * 2**n_local, downs, blocks)[:-3])
        for n in range(1, n_local + 1):
            w = ngf * 2 ** (n_local - n)
            setattr(self, f"model{n}_1", nn.Sequential(
                nn.ReflectionPad2d(3), nn.Conv2d(input_nc, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True),
                nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(True)))
            up = [ref_resblock(2 * w) for _ in range(blocks_local)]
            up += [nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w), nn.ReLU(True)]
            if n == n_local:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
            setattr(self, f"model{n}_2", nn.Sequential(*up))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, x):
        pyramid = [x]
        for _ in range(self.n_local):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local + 1):
            out = getattr(self, f"model{n}_2")(getattr(self, f"model{n}_1")(pyramid[self.n_local - n]) + out)
        return out


class RefMultiscaleD(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, num_d):
        super().__init__()
        self.num_d, self.n_layers = num_d, n_layers
        for i in range(num_d):
            stages = [[nn.Conv2d(input_nc, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]]
            nf = ndf
            for _n in range(1, n_layers):
                prev, nf = nf, min(nf * 2, 512)
                stages.append([nn.Conv2d(prev, nf, 4, 2, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)])
            prev, nf = nf, min(nf * 2, 512)
            stages.append([nn.Conv2d(prev, nf, 4, 1, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)])
            stages.append([nn.Conv2d(nf, 1, 4, 1, 2)])
            for j, stage in enumerate(stages):
                setattr(self, f"scale{i}_layer{j}", nn.Sequential(*stage))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, x):
        result = []
        for i in range(self.num_d):  # the reference runs its last-numbered PatchGAN on full resolution
            feats = [x]
            for j in range(self.n_layers + 2):
                feats.append(getattr(self, f"scale{self.num_d - 1 - i}_layer{j}")(feats[-1]))
            result.append(feats[1:])
            x = self.downsample(x)
        return result


def write_opt_txt(folder: Path, options: dict[str, str]) -> None:
    lines = ["------------ Options -------------", *(f"{k}: {v}" for k, v in sorted(options.items())),
             "-------------- End ----------------"]
    (folder / "opt.txt").write_text("\n".join(lines) + "\n")


def test_local_generator_and_multiscale_d_import_with_reference_outputs(tmp_path):
    torch.manual_seed(0)
    ref_g = RefLocalEnhancer(6, 3, ngf=4, downs=2, blocks=2, n_local=1, blocks_local=1).eval()
    ref_d = RefMultiscaleD(6 + 3, ndf=4, n_layers=3, num_d=3).eval()
    for net in (ref_g, ref_d):
        for p in net.parameters():
            p.data.normal_(0, 0.2)
    torch.save(ref_g.state_dict(), tmp_path / "latest_net_G.pth")
    torch.save(ref_d.state_dict(), tmp_path / "latest_net_D.pth")
    write_opt_txt(tmp_path, {
        "name": "label2city_1024p", "netG": "local", "ngf": "4", "ndf": "4", "n_downsample_global": "2",
        "n_blocks_global": "2", "n_local_enhancers": "1", "n_blocks_local": "1", "label_nc": "5",
        "no_instance": "False", "num_D": "3", "n_layers_D": "3", "norm": "instance", "niter_fix_global": "10",
        "loadSize": "1024", "fineSize": "512", "resize_or_crop": "none", "gpu_ids": "[0]", "max_dataset_size": "inf"})
    assert is_pix2pixhd_folder(tmp_path)
    cfg, generator, discriminator, _ = load_hd_reference(tmp_path)
    assert (cfg.model.generator, cfg.data.label_nc, cfg.data.instance_maps, cfg.model.num_d) == ("local", 5, True, 3)
    assert cfg.train.niter_fix_global == 10 and cfg.data.layout == "pix2pixhd" and cfg.loss.gan_mode == "lsgan"
    x = torch.randn(2, 6, 32, 32)
    with torch.inference_mode():
        assert (generator(x) - ref_g(x)).abs().max().item() < 1e-5
        pair = torch.randn(1, 9, 48, 48)
        for ours, theirs in zip(discriminator.eval()(pair), ref_d(pair), strict=True):
            assert [t.shape for t in ours] == [t.shape for t in theirs]
            assert max((a - b).abs().max().item() for a, b in zip(ours, theirs, strict=True)) < 1e-5


def test_a_checkpoint_that_does_not_fit_its_options_names_the_file_and_the_layer(tmp_path):
    torch.manual_seed(0)
    torch.save(RefLocalEnhancer(6, 3, 4, 2, 2, 1, 1).state_dict(), tmp_path / "latest_net_G.pth")
    write_opt_txt(tmp_path, {"netG": "global", "ngf": "8", "label_nc": "5"})
    with pytest.raises(ReferenceError, match=r"latest_net_G\.pth: does not match the architecture in opt\.txt"):
        load_hd_reference(tmp_path)
    with pytest.raises(ReferenceError, match="netG 'resnet' is not a pix2pixHD generator"):
        config_from_hd_options({"netG": "resnet"})
    with pytest.raises(ReferenceError, match="no latest_net_G.pth"):
        load_hd_reference(tmp_path / "..")
