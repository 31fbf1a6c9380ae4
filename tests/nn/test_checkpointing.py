import pytest
import torch

from pixforge.nn import create_generator
from pixforge.nn.build import set_gradient_checkpointing


@pytest.mark.parametrize("name", ["unet_64", "resnet_6blocks"])
def test_checkpointing_gives_the_same_gradients(name):
    torch.manual_seed(0)
    net = create_generator(name, ngf=8, norm="instance", dropout=True).train()
    x = torch.randn(2, 3, 64, 64)

    def grads(enabled: bool) -> list[torch.Tensor]:
        set_gradient_checkpointing(net, enabled)
        net.zero_grad()
        torch.manual_seed(1)  # same dropout masks in both runs
        net(x).square().mean().backward()
        return [p.grad.clone() for p in net.parameters()]

    plain, recomputed = grads(False), grads(True)
    for a, b in zip(plain, recomputed, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_checkpointing_is_off_at_inference():
    net = create_generator("unet_32", ngf=4)
    set_gradient_checkpointing(net, True)
    assert net.gradient_checkpointing
    with torch.no_grad():
        assert net.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
