"""Networks and losses, created by name: ``create_generator("unet_256", ...)``."""

from pixforge.nn import cgan, discriminators, hd, multiscale, resnet, spade, unet  # noqa: F401  (registers the networks)
from pixforge.nn.discriminators import PatchDiscriminator, PixelDiscriminator
from pixforge.nn.feature_encoder import FeatureEncoder, instance_mean
from pixforge.nn.hd import GlobalGenerator, LocalEnhancer
from pixforge.nn.init import init_weights
from pixforge.nn.losses import (
    adversarial_loss,
    feature_matching_loss,
    gradient_penalty,
    kl_divergence,
    l1_loss,
    multiscale_adversarial_loss,
)
from pixforge.nn.multiscale import MultiscaleDiscriminator
from pixforge.nn.registry import (
    create_discriminator,
    create_generator,
    list_discriminators,
    list_generators,
    register_discriminator,
    register_generator,
)
from pixforge.nn.resnet import ResnetGenerator
from pixforge.nn.spade import SPADEGenerator, StyleEncoder
from pixforge.nn.unet import UnetGenerator

__all__ = [
    "FeatureEncoder",
    "GlobalGenerator",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "SPADEGenerator",
    "StyleEncoder",
    "UnetGenerator",
    "adversarial_loss",
    "create_discriminator",
    "create_generator",
    "feature_matching_loss",
    "gradient_penalty",
    "init_weights",
    "instance_mean",
    "kl_divergence",
    "l1_loss",
    "list_discriminators",
    "list_generators",
    "multiscale_adversarial_loss",
    "register_discriminator",
    "register_generator",
]
