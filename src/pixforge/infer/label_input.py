"""What a label-map generator takes at inference, from what a user has: a label map (+ instances, + features).

Label maps come as class-index PNGs, palette drawings or arrays of class numbers (``data.labels``); they become
one-hot channels, an instance-boundary channel when the model was trained with instance maps, and the
pix2pixHD instance features when it has a feature encoder. Everything here is per pixel or per instance, so
resizing the result with nearest neighbour (as ``Translator`` does) keeps it exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from pixforge.config import Config
from pixforge.data.image_io import read_image, read_index_map
from pixforge.data.labels import encode_label_map, label_map_classes
from pixforge.data.palette import Palette, get_palette
from pixforge.infer.features import FeatureChoice, FeatureClusters, feature_map


class LabelInput:
    def __init__(self, config: Config, clusters: FeatureClusters | None = None) -> None:
        data = config.data
        self.label_nc, self.instance_maps, self.ignore_label = data.label_nc, data.instance_maps, data.ignore_label
        self.palette: Palette | None = get_palette(data.input_palette) if data.input_palette else None
        self.feat_num = config.model.feat_num if config.model.features else 0
        self.clusters = clusters
        self.channels = data.input_channels + self.feat_num
        """Channels of the generator's input."""

    def read(self, path: str | Path) -> np.ndarray:
        """A label file -> HxW class numbers (a palette drawing is snapped here, on the reader's thread)."""
        if self.palette is not None:
            return label_map_classes(read_image(path, 3), self.label_nc, self.palette, self.ignore_label, path)
        return label_map_classes(read_index_map(path), self.label_nc, None, self.ignore_label, path)

    def encode(self, image: object, instances: object = None,
               features: Mapping[int, FeatureChoice] | None = None) -> torch.Tensor:
        """C x H x W: one-hot classes [+ instance boundaries] [+ per-instance features].

        Without an instance map each class region counts as one instance (boundaries between classes only)."""
        classes = label_map_classes(image, self.label_nc, self.palette, self.ignore_label)
        ids = classes.astype(np.int64) if instances is None else _instance_ids(instances, classes.shape)
        labels = torch.from_numpy(classes.astype(np.int64))
        x = encode_label_map(labels, self.label_nc, torch.from_numpy(ids) if self.instance_maps else None)
        if self.feat_num:
            x = torch.cat([x, feature_map(classes, ids, self.feat_num, self.clusters, features)])
        elif features:
            raise ValueError("features: this model has no feature encoder (model.features is off)")
        return x


def _instance_ids(instances: object, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(instances, torch.Tensor):
        instances = instances.detach().cpu().numpy()
    ids = np.asarray(instances)
    if ids.ndim == 3 and ids.shape[2] == 1:
        ids = ids[..., 0]
    if ids.shape != shape or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"instances: expected an integer map of the label map's size {shape[1]}x{shape[0]}, "
                         f"got {ids.dtype} of shape {ids.shape}")
    return ids.astype(np.int64)
