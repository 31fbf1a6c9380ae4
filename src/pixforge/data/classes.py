"""Class-labelled images (``data.layout: classes``) for class-conditional generation.

Two ways to store them:

* one folder per class, ``root/<split>/<class>/*.png`` (or ``root/<class>/`` with no split folder); class names
  are the folder names, in natural order;
* MNIST's IDX files in ``root``: ``*<split>*-images-idx3-ubyte[.gz]`` with its ``...-labels-idx1-ubyte[.gz]``
  (classes ``0``..``9``, or as many as the largest label says).

Items are ``{"image", "label", "index"}``: the image resized to ``data.crop_size`` (bicubic), CxHxW float32 in
[-1, 1]; no flips (a flipped digit is another glyph). Everything is decoded once into one uint8 array.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from pixforge.config import DataConfig
from pixforge.data.datasets import DatasetError, _extensions, resolve_key
from pixforge.data.image_io import ImageError, convert_channels, list_images, read_image, to_tensor
from pixforge.data.transforms import resize

_IDX_TYPES = {0x08: np.uint8}


class ClassItem(TypedDict):
    image: torch.Tensor
    label: int
    index: int


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: magic 0x0000TTDD, DD dimensions of big-endian uint32, then the data)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetError(f"{path}: cannot be read as an IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (expected magic 0x00000801 or 0x00000803)")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=_IDX_TYPES[raw[2]], offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {shape}, holds {data.size} values (truncated?)")
    return data.reshape(shape)


def find_idx(root: Path, split: str | None) -> tuple[Path, Path] | None:
    """The images and labels IDX files of ``split`` in ``root``, if it holds them."""
    images = sorted(p for p in root.glob("*-images-idx3-ubyte*") if split is None or split in p.name)
    if not images:
        return None
    labels = Path(str(images[0]).replace("-images-idx3-ubyte", "-labels-idx1-ubyte"))
    if not labels.is_file():
        raise DatasetError(f"{images[0]}: no labels file beside it (expected {labels.name})")
    return images[0], labels


def class_folders(root: Path, split: str | None) -> list[Path]:
    base = root / split if split is not None and (root / split).is_dir() else root
    return sorted((p for p in base.iterdir() if p.is_dir() and list_images(p)),
                  key=lambda p: [int(t) if t.isdigit() else t for t in p.name.replace("_", " ").split()])


class ClassDataset(Dataset):
    """Labelled images of ``data.layout: classes``; ``class_names`` in label order."""

    def __init__(self, cfg: DataConfig, split: str | None, train: bool, whole: bool = False) -> None:
        del train, whole  # no augmentation: the same images for training and evaluation
        if cfg.root is None:
            raise DatasetError("data.root is not set; point it at class folders or MNIST IDX files")
        root = Path(cfg.root)
        if not root.is_dir():
            raise DatasetError(f"data.root {root}: no such folder")
        self.cfg, self.skipped = cfg, []
        idx = find_idx(root, split)
        if idx is not None:
            images, labels = read_idx(idx[0]), read_idx(idx[1]).astype(np.int64)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DatasetError(f"{idx[0]}: expected N×H×W images and N labels, got {images.shape} and "
                                   f"{labels.shape}")
            self.class_names = [str(i) for i in range(int(labels.max()) + 1)]
            arrays = [img[..., None] for img in images]
        else:
            folders = class_folders(root, split)
            if not folders:
                raise DatasetError(f"{root}: no class folders of images ({_extensions()}) and no MNIST "
                                   f"*-images-idx3-ubyte files; layout 'classes' reads root/<class>/*.png")
            self.class_names = [f.name for f in folders]
            arrays, label_list = [], []
            for label, folder in enumerate(folders):
                for path in list_images(folder):
                    try:
                        arrays.append(read_image(path, cfg.output_nc, cfg.max_pixels))
                    except ImageError as err:
                        if not cfg.skip_bad:
                            raise
                        self.skipped.append((str(err.path), err.problem))
                        continue
                    label_list.append(label)
            labels = np.array(label_list, dtype=np.int64)
        if cfg.max_items is not None:
            arrays, labels = arrays[:cfg.max_items], labels[:cfg.max_items]
        self._sizes = [a.shape[:2] for a in arrays]
        size = cfg.crop_size
        self._images = np.stack([resize(convert_channels(a, cfg.output_nc), size, size) for a in arrays])
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> ClassItem:
        index, _ = resolve_key(key, len(self))
        return {"image": to_tensor(self._images[index]), "label": int(self.labels[index]), "index": index}

    def source_size(self) -> tuple[int, int]:
        heights, widths = zip(*self._sizes, strict=True)
        return int(np.median(heights)), int(np.median(widths))

    def preload(self, progress: bool = True) -> None:
        """Everything is decoded when the dataset is built."""
        del progress

    def cached_bytes(self) -> int:
        return int(self._images.nbytes)
