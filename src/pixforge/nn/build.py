"""Build the networks a config describes (the one place config fields become constructor arguments).

Every model field is offered to the registered factory, which takes the ones its signature names: a
``global`` G gets ``n_downsample_global``, a ``spade`` G gets ``spade_norm``, a U-Net neither. Adding a
network with new options needs a config field and a factory argument of the same name, nothing here.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pixforge.config import Config
from pixforge.nn.feature_encoder import FeatureEncoder
from pixforge.nn.init import init_weights
from pixforge.nn.registry import DISCRIMINATORS, GENERATORS
from pixforge.nn.spade import StyleEncoder


def generator_input_nc(cfg: Config) -> int:
    """G's input channels: the input side (image, or one-hot classes + instance boundaries) plus the
    pix2pixHD instance features when the feature encoder is on."""
    return cfg.data.input_channels + (cfg.model.feat_num if cfg.model.features else 0)


def _offered(cfg: Config) -> dict[str, Any]:
    return {**cfg.model.model_dump(), "n_layers": cfg.model.n_layers_d, "crop_size": cfg.data.crop_size,
            "num_classes": len(cfg.data.class_names or ())}


def build_generator(cfg: Config, init: bool = True, input_nc: int | None = None,
                    output_nc: int | None = None) -> nn.Module:
    """The config's generator; ``input_nc``/``output_nc`` override the channels it maps (CycleGAN's ``G_B``
    maps the output side back to the input side)."""
    offered = {**_offered(cfg), "input_nc": generator_input_nc(cfg) if input_nc is None else input_nc,
               "output_nc": cfg.data.output_nc if output_nc is None else output_nc}
    net = GENERATORS.create_with(cfg.model.generator, offered)
    return init_weights(net, cfg.model.init_gain, cfg.model.init_type) if init else net


def build_discriminator(cfg: Config, init: bool = True, input_nc: int | None = None) -> nn.Module:
    """The config's discriminator. By default a conditional GAN's: D sees the input and the output side by
    side in the channel dimension. ``input_nc`` gives an unconditional D of one image (CycleGAN's)."""
    channels = cfg.data.input_channels + cfg.data.output_nc if input_nc is None else input_nc
    offered = {**_offered(cfg), "input_nc": channels}
    net = DISCRIMINATORS.create_with(cfg.model.discriminator, offered)
    return init_weights(net, cfg.model.init_gain, cfg.model.init_type) if init else net


def build_feature_encoder(cfg: Config, init: bool = True) -> FeatureEncoder:
    """pix2pixHD's E (``model.features``): real image -> ``feat_num`` features per instance."""
    m = cfg.model
    net = FeatureEncoder(cfg.data.output_nc, m.feat_num, m.nef, m.n_downsample_e, m.norm)
    return init_weights(net, m.init_gain) if init else net


def build_style_encoder(cfg: Config, init: bool = True) -> StyleEncoder:
    """SPADE's VAE encoder (``model.use_vae``): real image -> mean and log-variance of z."""
    net = StyleEncoder(cfg.data.output_nc, cfg.model.ngf, cfg.model.z_dim)
    return init_weights(net, cfg.model.init_gain) if init else net


def size_multiple(net: nn.Module) -> int:
    """Height and width a generator's input must be a multiple of (1 if it does not say)."""
    return int(getattr(net, "size_multiple", 1))


def set_gradient_checkpointing(net: nn.Module, enabled: bool) -> None:
    """Switch activation recomputation on in every block of ``net`` that supports it."""
    for module in net.modules():
        if hasattr(module, "gradient_checkpointing"):
            module.gradient_checkpointing = enabled


def bake_parametrizations(net: nn.Module) -> nn.Module:
    """Replace parametrised weights (spectral norm) by the values they compute now, in place: what an
    inference-only copy wants (ONNX has no operator for the power iteration's dot product)."""
    from torch.nn.utils import parametrize

    for module in [m for m in net.modules() if parametrize.is_parametrized(m)]:
        # The parametrised class is shared with any deep copy of this module, and removal deletes a property
        # from it: give this module a class of its own first, so the original network keeps working.
        cls = module.__class__
        module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
        for name in list(module.parametrizations.keys()):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return net
