"""Data layer: decode and validate images, list pairs (or two unpaired domains) on disk, and make augmented items."""

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
    read_index_map,
    to_tensor,
    write_image,
)
from pixforge.data.label_dataset import LabelMapDataset, has_split, open_dataset
from pixforge.data.labels import LabelError, encode_label_map, instance_boundaries, label_classes, one_hot
from pixforge.data.transforms import AugmentParams, apply_params, eval_params, prepare, sample_params
from pixforge.data.unaligned import UnalignedDataset, load_domains

__all__ = [
    "IMAGE_EXTENSIONS",
    "AugmentParams",
    "DatasetError",
    "ImageError",
    "ImageHeader",
    "LabelError",
    "LabelMapDataset",
    "PairSource",
    "PairedDataset",
    "PairedItem",
    "UnalignedDataset",
    "apply_params",
    "convert_channels",
    "encode_label_map",
    "eval_params",
    "from_tensor",
    "has_split",
    "instance_boundaries",
    "label_classes",
    "list_images",
    "load_domains",
    "load_pairs",
    "one_hot",
    "open_dataset",
    "prepare",
    "probe_image",
    "read_image",
    "read_index_map",
    "read_pair",
    "sample_params",
    "to_tensor",
    "write_image",
]
