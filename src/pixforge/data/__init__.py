"""Data layer: decode and validate images, list pairs on disk, and make joint-augmented items."""

from pixforge.data.datasets import DatasetError, PairedDataset, PairedItem, PairSource, load_pairs, read_pair
from pixforge.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    ImageHeader,
    convert_channels,
    from_tensor,
    list_images,
    probe_image,
    read_image,
    to_tensor,
    write_image,
)
from pixforge.data.transforms import AugmentParams, apply_params, eval_params, prepare, sample_params

__all__ = [
    "IMAGE_EXTENSIONS",
    "AugmentParams",
    "DatasetError",
    "ImageError",
    "ImageHeader",
    "PairSource",
    "PairedDataset",
    "PairedItem",
    "apply_params",
    "convert_channels",
    "eval_params",
    "from_tensor",
    "list_images",
    "load_pairs",
    "prepare",
    "probe_image",
    "read_image",
    "read_pair",
    "sample_params",
    "to_tensor",
    "write_image",
]
