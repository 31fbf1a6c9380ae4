"""pix2pixHD and SPADE networks: shapes, parameter counts, losses (acceptance 1 of the pix2pixHD issue)."""

import itertools

import pytest
import torch
from torch import nn

from pixforge.config import config_from_dict
from pixforge.nn import (
    FeatureEncoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    SPADEGenerator,
    create_discriminator,
    create_generator,
    feature_matching_loss,
    instance_mean,
    multiscale_adversarial_loss,
)
from pixforge.nn.build import build_discriminator, build_generator, set_gradient_checkpointing
from pixforge.nn.losses import adversarial_loss
from pixforge.nn.spade import SPADE, SPADEResBlock, StyleEncoder
from pixforge.nn.vgg import VGG19_FILE, VGG19Features, VGGLoss, VGGWeightsError, load_vgg19


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def global_count(input_nc: int, output_nc: int, ngf: int, downs: int, blocks: int, head: bool = True) -> int:
    """pix2pixHD G1's parameters from the paper's layer list (instance norm has none)."""
    total = conv(input_nc, ngf, 7)
    total += sum(conv(ngf * 2**i, ngf * 2 ** (i + 1), 3) for i in range(downs))
    total += blocks * 2 * conv(ngf * 2**downs, ngf * 2**downs, 3)
    total += sum(conv(ngf * 2 ** (i + 1), ngf * 2**i, 3) for i in range(downs))  # transposed: same count
    return total + (conv(ngf, output_nc, 7) if head else 0)


def on_meta(factory, *args, **kwargs) -> nn.Module:
    """Build without allocating weights: a 180 M-parameter network costs nothing to count."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def test_global_generator_has_the_papers_182m_parameters():
    net = on_meta(create_generator, "global", input_nc=36, output_nc=3, ngf=64, n_downsample_global=4,
                  n_blocks_global=9)
    assert isinstance(net, GlobalGenerator)
    assert n_params(net) == global_count(36, 3, 64, 4, 9) == 182_546_755
    assert 182e6 < n_params(net) < 183e6
    assert net.size_multiple == 16


def test_local_generator_is_the_global_at_twice_the_width_without_its_head_plus_an_enhancer():
    net = on_meta(create_generator, "local", input_nc=36, output_nc=3, ngf=32)
    assert isinstance(net, LocalEnhancer)
    enhancer = conv(36, 32, 7) + conv(32, 64, 3) + 3 * 2 * conv(64, 64, 3) + conv(64, 32, 3) + conv(32, 3, 7)
    assert n_params(net) == global_count(36, 3, 64, 4, 9, head=False) + enhancer == 182_857_059
    assert net.size_multiple == 32
    # The global part's names are a global generator's, so a trained global run fills it by name.
    global_names = set(on_meta(create_generator, "global", input_nc=36, ngf=64).state_dict())
    local_names = {k for k in net.state_dict() if k.startswith("model.")}
    assert local_names == global_names - {"model.38.weight", "model.38.bias"}  # its 7x7 head conv


@pytest.mark.parametrize(("name", "extra", "size"), [
    ("global", {"n_downsample_global": 3, "n_blocks_global": 2}, 24),
    ("local", {"n_downsample_global": 2, "n_blocks_global": 1, "n_local_enhancers": 2, "n_blocks_local": 1}, 32),
])
def test_hd_generators_keep_the_size_and_end_in_tanh(name, extra, size):
    net = create_generator(name, input_nc=13, output_nc=3, ngf=4, **extra)
    y = net(torch.randn(2, 13, size, size) * 5)
    assert y.shape == (2, 3, size, size) and y.abs().max() <= 1


def test_local_coarse_parameters_are_all_but_the_outermost_enhancer():
    net = create_generator("local", input_nc=5, ngf=4, n_downsample_global=2, n_blocks_global=1,
                           n_local_enhancers=2, n_blocks_local=1)
    coarse = {id(p) for p in net.coarse_parameters()}
    outer = {id(p) for n, p in net.named_parameters() if n.startswith("model2_")}
    assert coarse.isdisjoint(outer) and len(coarse) + len(outer) == len(list(net.parameters()))
    assert {id(p) for p in net.model1_1.parameters()} <= coarse  # inner enhancers stay frozen too (reference)


@pytest.mark.parametrize("name", ["global", "local"])
def test_gradient_checkpointing_gives_the_same_gradients(name):
    torch.manual_seed(0)
    extra = {"n_blocks_local": 1} if name == "local" else {}
    net = create_generator(name, input_nc=4, ngf=4, n_downsample_global=2, n_blocks_global=2, **extra)
    x = torch.randn(1, 4, 16, 16)
    grads = []
    for enabled in (False, True):
        set_gradient_checkpointing(net, enabled)
        net.zero_grad()
        net(x).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("num_d", "n_layers"), [(2, 3), (3, 2)])
def test_multiscale_discriminator_returns_num_d_times_n_layers_plus_2_feature_maps(num_d, n_layers):
    d = create_discriminator("multiscale", input_nc=6, ndf=8, n_layers=n_layers, num_d=num_d)
    assert isinstance(d, MultiscaleDiscriminator)
    out = d(torch.randn(1, 6, 64, 64))
    assert len(out) == num_d and all(len(scale) == n_layers + 2 for scale in out)
    assert all(scale[-1].shape[1] == 1 for scale in out)  # the last map of each scale is the patch score
    # Each scale sees the pair pooled by 2 once more: its first layer's map is half the previous one's.
    assert [scale[0].shape[-1] for scale in out] == [33, 17, 9][:num_d]


def test_spectral_norm_discriminator_keeps_each_conv_at_unit_spectral_norm():
    torch.manual_seed(0)
    d = create_discriminator("multiscale", input_nc=4, ndf=8, n_layers=2, num_d=1, spectral_norm=True)
    for _ in range(30):  # power iterations run in training forwards
        d(torch.randn(1, 4, 32, 32))
    w = d.scales[0].layers[1][0].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_feature_matching_is_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(0)
    d = create_discriminator("multiscale", input_nc=6, ndf=8, n_layers=3, num_d=2)
    a, b = torch.randn(1, 6, 64, 64), torch.randn(1, 6, 64, 64)
    assert feature_matching_loss(d(a), d(a)).item() == 0
    assert feature_matching_loss(d(b), d(a)).item() > 0


def test_feature_matching_weights_layers_by_4_over_their_number_and_averages_scales():
    ones, zeros = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    fake = [[ones, ones, ones, ones, zeros]] * 2  # 4 intermediate layers, each at L1 distance 1
    real = [[zeros] * 5] * 2
    assert feature_matching_loss(fake, real).item() == pytest.approx(4.0)  # 4 layers x 4/4, mean over 2 scales


def test_multiscale_adversarial_loss_sums_or_averages_the_scales():
    preds = [[torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)]]
    lsgan = adversarial_loss("lsgan")
    assert multiscale_adversarial_loss(lsgan, preds, True, True).item() == 2.0  # pix2pixHD: sum
    assert multiscale_adversarial_loss(lsgan, preds, True, True, reduce="mean").item() == 1.0  # SPADE: mean


@pytest.fixture(scope="module")
def random_vgg() -> VGG19Features:
    torch.manual_seed(0)
    vgg = VGG19Features()
    for m in vgg.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
    return vgg


def test_vgg_loss_is_zero_for_identical_images_and_positive_otherwise(random_vgg):
    loss = VGGLoss(random_vgg)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(a, a).item() == 0
    assert loss(b, a).item() > 0
    fake = b.clone().requires_grad_(True)
    loss(fake, a).backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in random_vgg.parameters())


def test_vgg_features_are_relu1_1_to_relu5_1_with_torchvision_names(random_vgg):
    out = random_vgg(torch.zeros(1, 3, 32, 32))
    assert [o.shape[1] for o in out] == [64, 128, 256, 512, 512]
    assert [o.shape[-1] for o in out] == [32, 16, 8, 4, 2]
    assert "features.28.weight" in random_vgg.state_dict() and "features.30.weight" not in random_vgg.state_dict()


def test_vgg_weights_load_from_a_path_and_missing_or_wrong_files_fail_in_one_line(tmp_path, random_vgg,
                                                                                   monkeypatch):
    path = tmp_path / "my_vgg.pth"
    torch.save({**random_vgg.state_dict(), "classifier.0.weight": torch.zeros(1)}, path)
    loaded = load_vgg19(path)
    torch.testing.assert_close(loaded.state_dict()["features.0.weight"], random_vgg.state_dict()["features.0.weight"])

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(VGGWeightsError) as err:
        load_vgg19()
    message = str(err.value)
    assert "\n" not in message and VGG19_FILE in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / VGG19_FILE) in message
    assert "loss.vgg_loss: false" in message

    impostor = tmp_path / "torch_home" / "hub" / "checkpoints" / VGG19_FILE
    impostor.parent.mkdir(parents=True)
    torch.save(random_vgg.state_dict(), impostor)
    with pytest.raises(VGGWeightsError, match="does not match"):
        load_vgg19()
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(VGGWeightsError, match="not torchvision VGG19 weights"):
        load_vgg19(path)


def test_instance_mean_averages_within_each_instance_of_each_image():
    features = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 2, 3)
    instances = torch.tensor([[[0, 0, 1], [1, 1, 7]], [[0, 5, 5], [5, 5, 5]]])
    out = instance_mean(features, instances)
    for b in range(2):
        for i in instances[b].unique():
            mask = instances[b] == i
            for c in range(2):
                assert torch.allclose(out[b, c][mask], features[b, c][mask].mean())


def test_feature_encoder_gives_one_vector_per_instance():
    enc = FeatureEncoder(3, feat_num=3, nef=4, n_downsampling=2)
    instances = torch.zeros(1, 16, 16, dtype=torch.long)
    instances[:, :, 8:] = 3
    out = enc(torch.randn(1, 3, 16, 16), instances)
    assert out.shape == (1, 3, 16, 16)
    assert out[0, :, :, :8].flatten(1).unique(dim=1).shape[1] == 1
    assert out[0, :, :, 8:].flatten(1).unique(dim=1).shape[1] == 1


def spade_count(label_nc: int, ngf: int, hidden: int, output_nc: int = 3) -> int:
    """The paper's SPADE generator (appendix A), parameters counted from its layer list."""
    def spade(c: int) -> int:
        return conv(label_nc, hidden, 3) + 2 * conv(hidden, c, 3)

    def block(c_in: int, c_out: int) -> int:
        mid = min(c_in, c_out)
        total = conv(c_in, mid, 3) + conv(mid, c_out, 3) + spade(c_in) + spade(mid)
        return total + (conv(c_in, c_out, 1, bias=False) + spade(c_in) if c_in != c_out else 0)

    widths = [16 * ngf] * 4 + [8 * ngf, 4 * ngf, 2 * ngf, ngf]
    return (conv(label_nc, 16 * ngf, 3) + sum(block(a, b) for a, b in itertools.pairwise(widths))
            + conv(ngf, output_nc, 3))


def test_spade_generator_shapes_and_parameter_count():
    small = create_generator("spade", input_nc=13, output_nc=3, ngf=4, spade_hidden=8)
    assert isinstance(small, SPADEGenerator) and small.size_multiple == 32
    assert n_params(small) == spade_count(13, 4, 8)
    assert 90e6 < spade_count(36, 64, 128) < 100e6  # the paper's generator at its defaults: ~96 M
    y = small(torch.randn(1, 13, 64, 96))
    assert y.shape == (1, 3, 64, 96) and y.abs().max() <= 1
    vae = create_generator("spade", input_nc=13, ngf=4, spade_hidden=8, use_vae=True, z_dim=8, crop_size=64)
    assert vae(torch.randn(2, 13, 64, 64), torch.randn(2, 8)).shape == (2, 3, 64, 64)
    assert vae(torch.randn(1, 13, 128, 64)).shape == (1, 3, 128, 64)  # other sizes: the start map is resized


def test_spades_start_map_resize_is_bilinear_interpolation():
    from pixforge.nn.spade import _resize_bilinear

    x = torch.randn(2, 5, 4, 4)
    for h, w in ((4, 4), (8, 4), (3, 7), (16, 32)):
        expected = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        torch.testing.assert_close(_resize_bilinear(x, h, w), expected, rtol=0, atol=1e-6)
    assert torch.equal(_resize_bilinear(x, 4, 4), x)  # the trained size: an exact copy


def test_spade_block_output_depends_on_the_label_map():
    torch.manual_seed(0)
    block = SPADEResBlock(8, 4, label_nc=5, hidden=8).eval()
    x = torch.randn(1, 8, 16, 16)
    seg_a = torch.zeros(1, 5, 16, 16)
    seg_a[:, 0] = 1
    seg_b = seg_a.clone()
    seg_b[:, :, :, 8:] = 0
    seg_b[:, 3, :, 8:] = 1
    out_a, out_b = block(x, seg_a), block(x, seg_b)
    assert not torch.allclose(out_a[..., 8:], out_b[..., 8:])
    # Left half: same labels within reach of the 3x3 convs -> the same output there.
    torch.testing.assert_close(out_a[..., :4], out_b[..., :4])


def test_spade_modulates_with_gamma_and_beta_from_the_label_map():
    spade = SPADE(4, label_nc=3, hidden=8, norm="instance")
    nn.init.zeros_(spade.gamma.weight)
    nn.init.zeros_(spade.gamma.bias)
    nn.init.zeros_(spade.beta.weight)
    nn.init.zeros_(spade.beta.bias)
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(spade(x, torch.randn(1, 3, 4, 4)), nn.functional.instance_norm(x))  # gamma=beta=0


def test_spade_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    net = create_generator("spade", input_nc=5, ngf=2, spade_hidden=4, spade_norm="instance")
    seg = torch.randn(1, 5, 64, 64)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    grads = []
    for enabled in (False, True):
        net.load_state_dict(start)  # the same spectral-norm power-iteration state both times
        set_gradient_checkpointing(net, enabled)
        net.zero_grad()
        net(seg).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_style_encoder_gives_a_mean_and_log_variance_of_z_dim():
    mu, logvar = StyleEncoder(3, ngf=2, z_dim=8)(torch.randn(2, 3, 100, 60))
    assert mu.shape == logvar.shape == (2, 8)


def test_build_offers_every_config_field_and_each_network_takes_its_own():
    cfg = config_from_dict({
        "model": {"kind": "pix2pixhd", "generator": "global", "discriminator": "multiscale", "ngf": 4, "ndf": 4,
                  "n_downsample_global": 2, "n_blocks_global": 1, "num_d": 3, "norm": "instance",
                  "features": True, "feat_num": 3},
        "data": {"label_nc": 12, "layout": "pix2pixhd", "instance_maps": True},
    })
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert g.model[1].in_channels == 12 + 1 + 3  # classes + instance boundaries + features
    assert len(g.model) == 4 + 2 * 3 + 1 + 2 * 3 + 3
    assert len(d.scales) == 3 and d.scales[0].layers[0][0].in_channels == 12 + 1 + 3  # label side + image
