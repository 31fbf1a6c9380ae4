"""Networks and losses, created by name: ``create_generator("unet_256", ...)``."""

from pixforge.nn import discriminators, resnet, unet  # noqa: F401  (registers the networks)
from pixforge.nn.discriminators import PatchDiscriminator, PixelDiscriminator
from pixforge.nn.init import init_weights
from pixforge.nn.losses import adversarial_loss, gradient_penalty, l1_loss
from pixforge.nn.registry import (
    create_discriminator,
    create_generator,
    list_discriminators,
    list_generators,
    register_discriminator,
    register_generator,
)
from pixforge.nn.resnet import ResnetGenerator
from pixforge.nn.unet import UnetGenerator

__all__ = [
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "adversarial_loss",
    "create_discriminator",
    "create_generator",
    "gradient_penalty",
    "init_weights",
    "l1_loss",
    "list_discriminators",
    "list_generators",
    "register_discriminator",
    "register_generator",
]
