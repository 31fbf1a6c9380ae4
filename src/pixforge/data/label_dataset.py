"""Label map -> image pairs (pix2pixHD, SPADE): items whose input is a one-hot label map.

The label side is read as class numbers (a class-index file, or a colour drawing snapped to ``data.input_palette``),
checked against ``label_nc``, and resized with nearest neighbour; the image side is resized bicubically as
everywhere else. Crops and flips are shared by label, instance and image maps. Items hold, besides ``input``
(the one-hot encoding, + instance boundaries) and ``target``:

* ``label``: the HxW class numbers (int64), ``instance``: instance ids (the classes where there are no
  instance maps, so every class region counts as one object, as the reference's ``--label_feat``);
* ``preview``: the label map drawn in colour in [-1, 1], for sample grids.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixforge.config import DataConfig
from pixforge.data.classes import ClassDataset
from pixforge.data.datasets import DatasetError, PairedDataset, PairSource, _aligned_half, split_exists
from pixforge.data.image_io import ImageError, convert_channels, probe_image, read_image, read_index_map, to_tensor
from pixforge.data.labels import classes_from_colours, encode_label_map, label_classes, render_classes
from pixforge.data.palette import Palette, get_palette
from pixforge.data.transforms import apply_params, prepare, prepared_size, resize_nearest
from pixforge.data.unaligned import UnalignedDataset

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray | None]
"""(classes HxW, image HxWxC, instance ids HxW or None) after the deterministic resize."""


class LabelMapDataset(PairedDataset):
    def __init__(self, cfg: DataConfig, split: str | None, train: bool, whole: bool = False) -> None:
        if cfg.label_nc == 0:
            raise DatasetError("data.label_nc is 0: the input is an image, use PairedDataset")
        self.palette: Palette | None = get_palette(cfg.input_palette) if cfg.input_palette else None
        if self.palette is not None and len(self.palette) != cfg.label_nc:
            raise DatasetError(f"data.label_nc is {cfg.label_nc} but palette '{self.palette.name}' "
                               f"(data.input_palette) has {len(self.palette)} classes")
        super().__init__(cfg, split, train, whole)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:  # type: ignore[override]
        index, seed = self._resolve(key)
        classes, image, instances = self._prepared(index)  # type: ignore[misc]
        cfg = self.cfg
        params = self._params(classes.shape[:2], seed)
        classes = apply_params(classes, params, cfg.crop_size)
        labels = torch.from_numpy(classes.astype(np.int64))
        ids = labels
        if instances is not None:
            instances = apply_params(instances, params, cfg.crop_size)
            ids = torch.from_numpy(instances.astype(np.int64))
        return {
            "input": encode_label_map(labels, cfg.label_nc, ids if cfg.instance_maps else None),
            "target": to_tensor(apply_params(image, params, cfg.crop_size)),
            "label": labels,
            "instance": ids,
            "preview": to_tensor(render_classes(classes, cfg.label_nc, self.palette, instances)),
            "path": str(self.sources[index].a),
            "index": index,
        }

    def cached_bytes(self) -> int:
        return sum(sum(a.nbytes for a in arrays if a is not None) for arrays in self._cache.values())

    def _label_and_image_paths(self, source: PairSource) -> tuple[Path, Path]:
        if self.cfg.layout == "pix2pixhd" or self.cfg.direction == "AtoB":
            return source.a, source.b  # type: ignore[return-value]
        return source.b, source.a  # type: ignore[return-value]

    def _decode(self, source: PairSource) -> Arrays:  # type: ignore[override]
        cfg = self.cfg
        if source.aligned:
            ab = read_image(source.a, 3, cfg.max_pixels)
            half = _aligned_half(source.a, ab.shape[1])
            label_side, image = (ab[:, :half], ab[:, half:]) if cfg.direction == "AtoB" else (ab[:, half:],
                                                                                             ab[:, :half])
            label_path = source.a
            values = classes_from_colours(label_side, self.palette, source.a)
            image = convert_channels(image, cfg.output_nc)
        else:
            label_path, image_path = self._label_and_image_paths(source)
            if self.palette is not None:
                values = classes_from_colours(read_image(label_path, 3, cfg.max_pixels), self.palette, label_path)
            else:
                values = read_index_map(label_path, cfg.max_pixels)
            image = read_image(image_path, cfg.output_nc, cfg.max_pixels)
        classes = label_classes(values, cfg.label_nc, label_path, cfg.ignore_label)
        instances = None
        if cfg.instance_maps:
            if source.inst is None:
                raise DatasetError(f"{source.a}: data.instance_maps is on but there is no instance map for it "
                                   f"(expected a <split>_inst/ folder with one file per label map)")
            instances = read_index_map(source.inst, cfg.max_pixels)
            if instances.shape != classes.shape:
                raise ImageError(source.inst, f"instance map {instances.shape[1]}x{instances.shape[0]} differs in "
                                              f"size from its label map {classes.shape[1]}x{classes.shape[0]}")
        if self.whole:  # as stored: validation translates them the way inference does
            if classes.shape != image.shape[:2]:
                raise ImageError(label_path, f"label map {classes.shape[1]}x{classes.shape[0]} and its image "
                                             f"{image.shape[1]}x{image.shape[0]} differ in size")
            return classes, image, instances
        self._check_sizes(source, classes.shape[:2], image.shape[:2])
        height, width = prepared_size(classes.shape[:2], cfg.preprocess, cfg.load_size, cfg.crop_size)
        classes = resize_nearest(classes, height, width)  # class numbers are never blended
        if instances is not None:
            instances = resize_nearest(instances, height, width)
        return classes, prepare(image, cfg.preprocess, cfg.load_size, cfg.crop_size), instances

    def _check_header(self, source: PairSource) -> tuple[int, int]:
        size = super()._check_header(source)
        if self.cfg.instance_maps and source.inst is not None:
            probe_image(source.inst, self.cfg.max_pixels)
        return size


AnyDataset = PairedDataset | UnalignedDataset | ClassDataset


def _pairs(cfg: DataConfig, split: str | None, train: bool, whole: bool) -> PairedDataset:
    """Paired layouts: label maps (``label_nc`` > 0) or image pairs."""
    kind = LabelMapDataset if cfg.label_nc else PairedDataset
    return kind(cfg, split, train, whole)


DATASETS: dict[str, Callable[[DataConfig, str | None, bool, bool], AnyDataset]] = {
    "aligned": _pairs,
    "folders": _pairs,
    "pix2pixhd": _pairs,
    "unaligned": UnalignedDataset,
    "classes": ClassDataset,
}
"""The dataset class for each ``data.layout``."""


def open_dataset(cfg: DataConfig, split: str | None, train: bool, whole: bool = False) -> AnyDataset:
    """The dataset a config describes, by ``data.layout``: pairs (of images or label maps) or two unpaired
    domains (``unaligned``)."""
    return DATASETS[cfg.layout](cfg, split, train, whole)


def has_split(cfg: DataConfig, split: str | None) -> bool:
    """Whether the dataset folder holds ``split`` (validation is optional)."""
    return cfg.root is not None and split is not None and split_exists(cfg.root, split, cfg.layout)
