"""Build the networks a config describes (the one place config fields become constructor arguments)."""

from __future__ import annotations

from torch import nn

from pixforge.config import Config
from pixforge.nn.init import init_weights
from pixforge.nn.registry import create_discriminator, create_generator


def build_generator(cfg: Config, init: bool = True) -> nn.Module:
    m = cfg.model
    net = create_generator(m.generator, input_nc=cfg.data.input_nc, output_nc=cfg.data.output_nc,
                           ngf=m.ngf, norm=m.norm, dropout=m.dropout)
    return init_weights(net, m.init_gain) if init else net


def build_discriminator(cfg: Config, init: bool = True) -> nn.Module:
    m = cfg.model
    # Conditional GAN: D sees the input and the output side by side in the channel dimension.
    net = create_discriminator(m.discriminator, input_nc=cfg.data.input_nc + cfg.data.output_nc,
                               ndf=m.ndf, n_layers=m.n_layers_d, norm=m.norm)
    return init_weights(net, m.init_gain) if init else net


def size_multiple(net: nn.Module) -> int:
    """Height and width a generator's input must be a multiple of (1 if it does not say)."""
    return int(getattr(net, "size_multiple", 1))


def set_gradient_checkpointing(net: nn.Module, enabled: bool) -> None:
    """Switch activation recomputation on in every block of ``net`` that supports it."""
    for module in net.modules():
        if hasattr(module, "gradient_checkpointing"):
            module.gradient_checkpointing = enabled
