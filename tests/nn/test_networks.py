import pytest
import torch

from pixforge.nn import (
    PatchDiscriminator,
    UnetGenerator,
    create_discriminator,
    create_generator,
    init_weights,
    list_generators,
)


def test_registry_lists_the_generator_families():
    assert "unet_<size>" in list_generators()
    assert "resnet_<n>blocks" in list_generators("resnet*")


@pytest.mark.parametrize(("name", "downs"), [("unet_32", 5), ("unet_128", 7), ("unet_256", 8)])
def test_unet_name_gives_log2_size_downsamplings(name, downs):
    net = create_generator(name, ngf=4)
    assert isinstance(net, UnetGenerator)
    assert net.num_downs == downs and net.size_multiple == 2**downs


def test_unknown_generator_names_the_known_ones():
    with pytest.raises(ValueError, match="unet_100: the size must be a power of two"):
        create_generator("unet_100")
    with pytest.raises(KeyError, match="known: dcgan, global, local, resnet_<n>blocks, spade, unet_<size>"):
        create_generator("vgg")


@pytest.mark.parametrize("name", ["unet_64", "resnet_6blocks", "resnet_9blocks"])
def test_generators_keep_size_and_end_in_tanh(name):
    net = create_generator(name, input_nc=1, output_nc=3, ngf=8).eval()
    y = net(torch.randn(2, 1, 64, 64) * 5)
    assert y.shape == (2, 3, 64, 64)
    assert y.abs().max() <= 1.0


def test_conv_bias_only_with_instance_norm():
    for norm, has_bias in (("batch", False), ("instance", True), ("none", False)):
        net = create_generator("unet_32", ngf=4, norm=norm)
        assert (net.down[1][1].bias is not None) == has_bias
        assert net.up[0][1].bias is not None  # the outermost conv always has one


def test_unet_dropout_sits_in_the_8ngf_decoder_levels():
    net = create_generator("unet_256", ngf=4, dropout=True)
    levels = [j for j, block in enumerate(net.up) if any(isinstance(m, torch.nn.Dropout) for m in block)]
    assert levels == [4, 5, 6]  # the num_downs - 5 = 3 middle blocks, as the reference


def test_patchgan_70_has_reference_layers_and_output_size():
    d = create_discriminator("patchgan", input_nc=6, ndf=8, n_layers=3)
    assert isinstance(d, PatchDiscriminator)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # 30x30 patches of 70x70
    assert create_discriminator("patchgan", ndf=8, n_layers=5)(torch.randn(1, 6, 256, 256)).shape[-1] == 6


def test_pixel_discriminator_scores_every_pixel():
    d = create_discriminator("pixel", input_nc=4, ndf=8)
    assert d(torch.randn(2, 4, 17, 23)).shape == (2, 1, 17, 23)


def test_init_is_normal_002_and_batchnorm_scale_near_one():
    torch.manual_seed(0)
    net = init_weights(create_generator("unet_256", ngf=16), 0.02)
    w = net.down[3][1].weight
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = net.down[3][2]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max() == 0


def test_resize_conv_decoders_double_like_transposed_ones_without_a_checkerboard_at_init():
    from pixforge.eval.metrics import checkerboard_energy
    from pixforge.nn import create_generator, init_weights

    x = torch.full((1, 3, 256, 256), 0.5)  # a flat input: any periodic structure in the output is the decoder's
    energies = {}
    for upsample in ("transposed", "resize_conv"):
        for name in ("unet_256", "resnet_6blocks"):
            torch.manual_seed(0)
            net = init_weights(create_generator(name, ngf=8, norm="none", upsample=upsample)).eval()
            with torch.no_grad():
                y = net(x)
            assert y.shape == (1, 3, 256, 256)
            grey = ((y[0].mean(0) + 1) * 127.5).numpy()
            energies[upsample, name] = checkerboard_energy(grey)
    for name in ("unet_256", "resnet_6blocks"):
        assert energies["resize_conv", name] < 0.2 * energies["transposed", name], energies
