import pytest
import torch

from pixforge.nn import adversarial_loss, create_discriminator, gradient_penalty


def test_vanilla_is_bce_on_logits():
    pred = torch.tensor([[0.0, 2.0]])
    expected = -torch.log(torch.sigmoid(pred)).mean()
    assert torch.allclose(adversarial_loss("vanilla")(pred, True, True), expected)


def test_lsgan_is_mse_to_one_or_zero():
    pred = torch.tensor([0.5, 1.5])
    assert adversarial_loss("lsgan")(pred, True, True).item() == pytest.approx(0.25)
    assert adversarial_loss("lsgan")(pred, False, True).item() == pytest.approx(1.25)


def test_hinge_differs_for_discriminator_and_generator():
    pred = torch.tensor([0.5, -2.0])
    hinge = adversarial_loss("hinge")
    assert hinge(pred, True, True).item() == pytest.approx((0.5 + 3.0) / 2)
    assert hinge(pred, False, True).item() == pytest.approx((1.5 + 0.0) / 2)
    assert hinge(pred, True, False).item() == pytest.approx(0.75)


def test_unknown_gan_mode_is_named():
    with pytest.raises(KeyError, match="unknown gan_mode 'wgan'"):
        adversarial_loss("wgan")


def test_gradient_penalty_is_zero_for_unit_gradient_and_grows_otherwise():
    class Linear(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, x):  # gradient wrt x has norm `scale` per sample when x has one element
            return (x.flatten(1) * self.scale).sum(1)

    real, fake = torch.randn(4, 1, 1, 1), torch.randn(4, 1, 1, 1)
    assert gradient_penalty(Linear(1.0), real, fake, 10.0).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_penalty(Linear(3.0), real, fake, 10.0).item() == pytest.approx(40.0, rel=1e-5)


def test_gradient_penalty_backpropagates_into_discriminator():
    d = create_discriminator("patchgan", input_nc=2, ndf=4, n_layers=1, norm="none")
    gp = gradient_penalty(d, torch.randn(2, 2, 16, 16), torch.randn(2, 2, 16, 16))
    gp.backward()
    weights = [m.weight for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
