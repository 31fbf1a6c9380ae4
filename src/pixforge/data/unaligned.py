"""Unpaired datasets (CycleGAN): two image domains of any sizes, as the reference's ``--dataset_mode unaligned``.

Layout ``unaligned``: ``root/<split>A/`` and ``root/<split>B/`` (``trainA/``, ``trainB/``, ``testA/``...).
An epoch has ``max(|A|, |B|)`` items; item ``i`` holds ``A[i mod |A|]`` and, as the reference, a random B (so
no pair is fixed) or, with ``data.serial_batches``, ``B[i mod |B|]``. A and B are cropped and flipped
independently: they show different scenes, so nothing needs to stay aligned.

As for pairs (``datasets.py``), everything random in an item (B's index, both crops and flips) comes from the
seed it is asked for, so an epoch is a pure function of the run seed and a resumed run is exact.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import Dataset

from pixforge.config import DataConfig, Direction
from pixforge.data.datasets import (
    DatasetError,
    _extensions,
    augment_params,
    check_crop_fits,
    domain_folders,
    resolve_key,
)
from pixforge.data.image_io import ImageError, list_images, probe_image, read_image, to_tensor
from pixforge.data.transforms import apply_params, prepare


class UnalignedItem(TypedDict):
    A: torch.Tensor
    B: torch.Tensor
    A_path: str
    B_path: str
    index: int


def load_domains(root: str | Path, split: str | None, direction: Direction = "AtoB") -> tuple[list[Path], list[Path]]:
    """The image files of domains A and B of ``split``, in natural order. ``BtoA`` swaps the folders, as the
    reference's ``--direction BtoA`` does: A is then read from ``<split>B/``."""
    root = Path(root)
    folders = domain_folders(root, split)
    needs = f"an unaligned dataset needs {folders[0].name}/ and {folders[1].name}/ folders of images"
    files = []
    for folder in folders:
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no such folder; {needs} in {root}{_layout_hint(root, split)}")
        found = list_images(folder)
        if not found:
            raise DatasetError(f"{folder}: no images ({_extensions()}); {needs}")
        files.append(found)
    a_files, b_files = files
    return (a_files, b_files) if direction == "AtoB" else (b_files, a_files)


class _Domain:
    """One domain's files, their sizes as stored, and its decode cache."""

    def __init__(self, folder: Path, channels: int) -> None:
        self.folder = folder
        self.channels = channels
        self.paths: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self.cache: dict[int, np.ndarray] = {}
        self.cache_unjittered: dict[int, np.ndarray] = {}
        """Resized straight to the crop size (``set_jitter(False)``)."""

    def __len__(self) -> int:
        return len(self.paths)


class UnalignedDataset(Dataset):
    """Unpaired items ``{"A", "B", "A_path", "B_path", "index"}``, tensors CxHxW float32 in [-1, 1].

    ``dataset[i]`` gives item ``i`` with seed ``i``; ``dataset[i, seed]`` with that seed. A has ``input_nc``
    channels and B ``output_nc`` (grey files become RGB, colour ones grey, alpha is dropped). With
    ``train=False`` there is no randomness: centre crops, no flip, and B is ``B[i mod |B|]`` (the reference's
    ``test.py`` sets ``serial_batches``). With ``whole=True`` items are the images as stored (no resize,
    crop or flip). ``data.max_items`` limits each domain, as the reference's ``--max_dataset_size``. Files are
    checked when the dataset is built (headers only; with ``skip_bad`` every file is decoded).
    """

    def __init__(self, cfg: DataConfig, split: str | None, train: bool, whole: bool = False) -> None:
        if cfg.root is None:
            raise DatasetError("data.root is not set; point it at the folder holding trainA/ and trainB/")
        if cfg.label_nc:
            raise DatasetError(f"data.label_nc is {cfg.label_nc}: layout 'unaligned' reads two domains of images, "
                               "not label maps; set label_nc 0 or use a paired layout")
        self.cfg = cfg
        self.train = train and not whole
        self.whole = whole
        self.skipped: list[tuple[str, str]] = []
        """(path, reason) of each image left out by ``skip_bad``."""
        self.jitter = True
        """Resize to ``load_size`` before the random crop; off: resize to ``crop_size`` (``set_jitter``)."""
        a_files, b_files = load_domains(cfg.root, split, cfg.direction)
        self._a = self._scan(a_files, cfg.input_nc)
        self._b = self._scan(b_files, cfg.output_nc)

    @property
    def a_paths(self) -> list[Path]:
        return self._a.paths

    @property
    def b_paths(self) -> list[Path]:
        return self._b.paths

    def __len__(self) -> int:
        return max(len(self._a), len(self._b))

    def __getitem__(self, key: int | tuple[int, int]) -> UnalignedItem:
        index, seed = resolve_key(key, len(self))
        cfg = self.cfg
        rng = np.random.default_rng(seed)
        # B's index is drawn first, so the pairing does not change with the crop and flip settings.
        random_b = self.train and not cfg.serial_batches
        b_index = int(rng.integers(len(self._b))) if random_b else index % len(self._b)
        a_index = index % len(self._a)
        a, b = self._prepared(self._a, a_index), self._prepared(self._b, b_index)
        a_params = augment_params(cfg, a.shape[:2], self.train, self.whole, rng)
        b_params = augment_params(cfg, b.shape[:2], self.train, self.whole, rng)
        return {
            "A": to_tensor(apply_params(a, a_params, cfg.crop_size)),
            "B": to_tensor(apply_params(b, b_params, cfg.crop_size)),
            "A_path": str(self._a.paths[a_index]),
            "B_path": str(self._b.paths[b_index]),
            "index": index,
        }

    def set_jitter(self, on: bool) -> None:
        """Resize jitter on (``load_size`` then a random crop) or off (straight to ``crop_size``; the crop then
        only flips): the CUT authors turn it off for the decay epochs (``data.decay_jitter``)."""
        self.jitter = on

    def source_size(self) -> tuple[int, int]:
        """Median (height, width) of domain A's images as stored, before any resize: G_A's input scale."""
        heights, widths = zip(*self._a.sizes, strict=True)
        return int(np.median(heights)), int(np.median(widths))

    def preload(self, progress: bool = True) -> None:
        """Decode and resize every image of both domains into the cache now (a no-op without ``cache``)."""
        if not self.cfg.cache:
            return
        images = chain(((self._a, i) for i in range(len(self._a))), ((self._b, i) for i in range(len(self._b))))
        for domain, index in track(images, total=len(self._a) + len(self._b), description="decoding images",
                                   disable=not progress, transient=True):
            self._prepared(domain, index)

    def cached_bytes(self) -> int:
        """Memory the cache holds now."""
        return sum(arr.nbytes for domain in (self._a, self._b)
                   for cache in (domain.cache, domain.cache_unjittered) for arr in cache.values())

    def _scan(self, files: list[Path], channels: int) -> _Domain:
        """Check each file (headers, or a full decode with ``skip_bad``) and keep the good ones."""
        cfg = self.cfg
        domain = _Domain(files[0].parent, channels)
        skipped_before = len(self.skipped)
        for path in files:
            if cfg.max_items is not None and len(domain) == cfg.max_items:
                break
            try:
                if cfg.skip_bad:
                    arr, size = self._decode(path, channels)
                else:
                    arr, size = None, self._check_header(path)
            except ImageError as err:
                if not cfg.skip_bad:
                    raise
                self.skipped.append((str(err.path), err.problem))
                continue
            if arr is not None and cfg.cache:
                domain.cache[len(domain)] = arr
            domain.paths.append(path)
            domain.sizes.append(size)
        if not domain.paths:
            first_path, first_problem = self.skipped[skipped_before]
            raise DatasetError(f"{domain.folder}: all {len(files)} images are bad; first: {first_path}: "
                               f"{first_problem}")
        return domain

    def _prepared(self, domain: _Domain, index: int) -> np.ndarray:
        """One image after the deterministic resize, from the cache when enabled."""
        cache = domain.cache if self.jitter else domain.cache_unjittered
        arr = cache.get(index)
        if arr is None:
            arr, _ = self._decode(domain.paths[index], domain.channels)
            if self.cfg.cache:
                cache[index] = arr
        return arr

    def _decode(self, path: Path, channels: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The image resized for training (as stored with ``whole``) and its (height, width) as stored."""
        cfg = self.cfg
        arr = read_image(path, channels, cfg.max_pixels)
        size = arr.shape[:2]
        if self.whole:
            return arr, size
        check_crop_fits(path, size, cfg)
        load_size = cfg.load_size if self.jitter else cfg.crop_size
        return prepare(arr, cfg.preprocess, load_size, cfg.crop_size), size

    def _check_header(self, path: Path) -> tuple[int, int]:
        """Find bad files from their headers alone (missing, unreadable, too large, too small to crop)."""
        header = probe_image(path, self.cfg.max_pixels)
        size = header.height, header.width
        if not self.whole:
            check_crop_fits(path, size, self.cfg)
        return size


def _layout_hint(root: Path, split: str | None) -> str:
    """Why the folder may be missing: the data is stored in a paired layout."""
    if split is not None and (root / split / "A").is_dir():
        return f"; {root / split} holds A/ and B/ folders: that is layout 'folders' (paired by name)"
    if split is not None and (root / split).is_dir():
        return f"; {root / split}/ exists: that is a paired layout ('aligned' or 'folders')"
    return ""
