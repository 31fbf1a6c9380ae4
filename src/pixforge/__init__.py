"""pixforge: paired image-to-image translation with conditional GANs."""

__version__ = "0.1.0"
