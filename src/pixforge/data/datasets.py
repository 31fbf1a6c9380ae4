"""Paired datasets: where pairs live on disk (:func:`load_pairs`) and how an item is made
(:class:`PairedDataset`).

Two layouts, as the reference's ``aligned`` dataset mode and the common A/B-folder convention:

* ``aligned``: ``root/split/*.jpg``, each file holding A|B side by side (split at ``width // 2``);
* ``folders``: ``root/split/A/`` and ``root/split/B/``, paired by file stem.

(pix2pixHD's label/image folders are paired too; the unpaired ``unaligned`` layout lives in ``unaligned.py``
and shares the helpers here: :func:`resolve_key`, :func:`augment_params`, :func:`check_crop_fits`.)

An item's random augmentation comes only from the seed it is asked for, never from global or
per-worker random state: the trainer derives seeds from (run seed, epoch, index), which makes an
epoch reproducible whatever the number of workers, and a resumed run exact.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import Dataset

from pixforge.config import DataConfig
from pixforge.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    convert_channels,
    list_images,
    probe_image,
    read_image,
    to_tensor,
)
from pixforge.data.transforms import (
    AugmentParams,
    apply_params,
    crops,
    eval_params,
    prepare,
    prepared_size,
    sample_params,
)

Layout = Literal["aligned", "folders", "pix2pixhd", "unaligned", "classes"]
HD_FOLDERS = {"label": "_label", "image": "_img", "instance": "_inst"}
"""pix2pixHD's layout: ``<split>_label/``, ``<split>_img/`` and (optional) ``<split>_inst/`` beside each other."""
_SHOW_UNMATCHED = 5


class DatasetError(ValueError):
    """A dataset folder is missing or inconsistent; the one-line message names it."""


@dataclass(frozen=True)
class PairSource:
    """Where one pair lives: one A|B file (aligned layout) or an A file and a B file (folders)."""

    a: Path
    """The A image, or the A|B file when ``b`` is None."""
    b: Path | None = None
    inst: Path | None = None
    """The instance map (pix2pixHD layout), when there is one."""

    @property
    def aligned(self) -> bool:
        return self.b is None


class PairedItem(TypedDict):
    input: torch.Tensor
    target: torch.Tensor
    path: str
    index: int


def load_pairs(root: str | Path, split: str | None, layout: Layout) -> list[PairSource]:
    """List the pairs of ``root/split`` (``root`` itself when ``split`` is None), in natural order."""
    root = Path(root)
    if layout == "pix2pixhd":
        return _hd_pairs(root, split or "train")
    if layout == "unaligned":
        a_dir, b_dir = domain_folders(root, split)
        raise DatasetError(f"{root}: layout 'unaligned' holds two unpaired domains ({a_dir.name}/, {b_dir.name}/), "
                           "not pairs; this needs a paired dataset (layout 'aligned', 'folders' or 'pix2pixhd')")
    folder = root if split is None else root / split
    if not folder.is_dir():
        hint = ""
        if split is not None and root.is_dir() and (_has_images(root) or (root / "A").is_dir()):
            hint = "; the root itself holds the data: use split None"
        raise DatasetError(f"{folder}: no such folder; expected the '{split}' split inside {root}{hint}")
    if layout == "aligned":
        files = list_images(folder)
        if not files:
            hint = "; it has A/ and B/ folders: use layout 'folders'" if (folder / "A").is_dir() else ""
            raise DatasetError(f"{folder}: no images ({_extensions()}){hint}")
        return [PairSource(a=f) for f in files]
    return _folder_pairs(folder)


def read_pair(
    source: PairSource, a_channels: int, b_channels: int, max_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the A and B images of one pair (HxWxC uint8/uint16, before any resizing)."""
    if source.b is not None:
        return read_image(source.a, a_channels, max_pixels), read_image(source.b, b_channels, max_pixels)
    ab = read_image(source.a, max(a_channels, b_channels), max_pixels)
    half = _aligned_half(source.a, ab.shape[1])
    return convert_channels(ab[:, :half], a_channels), convert_channels(ab[:, half:], b_channels)


class PairedDataset(Dataset):
    """Pairs as ``{"input", "target", "path", "index"}``, tensors CxHxW float32 in [-1, 1].

    ``dataset[i]`` gives item ``i`` with seed ``i``; ``dataset[i, seed]`` with that seed. With
    ``train=False`` there is no randomness: centre crop, no flip. With ``whole=True`` items are the
    decoded images as they are on disk (no resize, crop or flip): what inference sees, for validation.
    Files are checked when the dataset is built (headers only; with ``skip_bad`` every file is decoded
    so the skipped count is complete).
    """

    def __init__(self, cfg: DataConfig, split: str | None, train: bool, whole: bool = False) -> None:
        if cfg.root is None:
            raise DatasetError("data.root is not set; point it at the folder holding train/ and val/")
        self.cfg = cfg
        self.train = train and not whole
        self.whole = whole
        atob = cfg.direction == "AtoB"
        # Channels of A and B: the input side gets input_nc, the target side output_nc.
        self._a_channels, self._b_channels = (
            (cfg.input_nc, cfg.output_nc) if atob else (cfg.output_nc, cfg.input_nc)
        )
        self._atob = atob
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.skipped: list[tuple[str, str]] = []
        """(path, reason) of each pair left out by ``skip_bad``."""
        self.sources: list[PairSource] = []
        self._source_sizes: list[tuple[int, int]] = []
        for source in load_pairs(cfg.root, split, cfg.layout):
            if cfg.max_items is not None and len(self.sources) == cfg.max_items:
                break
            try:
                if cfg.skip_bad:
                    arrays = self._decode(source)
                    size = self._input_size(source)
                else:
                    arrays, size = None, self._check_header(source)
            except ImageError as err:
                if not cfg.skip_bad:
                    raise
                self.skipped.append((str(err.path), err.problem))
                continue
            if arrays is not None and cfg.cache:
                self._cache[len(self.sources)] = arrays
            self.sources.append(source)
            self._source_sizes.append(size)
        if not self.sources:
            raise DatasetError(
                f"{cfg.root}: all {len(self.skipped)} pairs of split '{split}' are bad; "
                f"first: {self.skipped[0][0]}: {self.skipped[0][1]}"
            )

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, key: int | tuple[int, int]) -> PairedItem:
        index, seed = self._resolve(key)
        inp, target = self._prepared(index)
        cfg = self.cfg
        params = self._params(inp.shape[:2], seed)
        return {
            "input": to_tensor(apply_params(inp, params, cfg.crop_size)),
            "target": to_tensor(apply_params(target, params, cfg.crop_size)),
            "path": str(self.sources[index].a),
            "index": index,
        }

    def _resolve(self, key: int | tuple[int, int]) -> tuple[int, int]:
        return resolve_key(key, len(self), "pairs")

    def _params(self, size_hw: tuple[int, int], seed: int) -> AugmentParams:
        return augment_params(self.cfg, size_hw, self.train, self.whole, np.random.default_rng(seed))

    def source_size(self) -> tuple[int, int]:
        """Median (height, width) of the input images as stored, before any resize: the scale they come in."""
        heights, widths = zip(*self._source_sizes, strict=True)
        return int(np.median(heights)), int(np.median(widths))

    def preload(self, progress: bool = True) -> None:
        """Decode and resize every pair into the cache now (a no-op without ``cache``).

        Worth it with ``num_workers == 0``; with workers each process fills its own cache lazily.
        """
        if not self.cfg.cache:
            return
        for index in track(
            range(len(self)), description="decoding images", disable=not progress, transient=True
        ):
            self._prepared(index)

    def cached_bytes(self) -> int:
        """Memory the cache holds now; times ``len(self) / len(cache)`` estimates the full cost."""
        return sum(a.nbytes + b.nbytes for a, b in self._cache.values())

    def _prepared(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (input, target) arrays after the deterministic resize, from the cache when enabled."""
        arrays = self._cache.get(index)
        if arrays is None:
            arrays = self._decode(self.sources[index])
            if self.cfg.cache:
                self._cache[index] = arrays
        return arrays

    def _decode(self, source: PairSource) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        a, b = read_pair(source, self._a_channels, self._b_channels, cfg.max_pixels)
        if self.whole:
            if a.shape[:2] != b.shape[:2]:
                raise ImageError(source.a, f"{_wh(a.shape[:2])} and its pair {_wh(b.shape[:2])} differ in size")
        else:
            self._check_sizes(source, a.shape[:2], b.shape[:2])
            a = prepare(a, cfg.preprocess, cfg.load_size, cfg.crop_size)
            b = prepare(b, cfg.preprocess, cfg.load_size, cfg.crop_size)
        return (a, b) if self._atob else (b, a)

    def _input_size(self, source: PairSource) -> tuple[int, int]:
        """(height, width) of this pair's input image as stored (headers only)."""
        return self._header_sizes(source)[0 if self._atob else 1]

    def _header_sizes(self, source: PairSource) -> tuple[tuple[int, int], tuple[int, int]]:
        a = probe_image(source.a, self.cfg.max_pixels)
        if source.b is None:
            half = _aligned_half(source.a, a.width)
            return (a.height, half), (a.height, a.width - half)
        b = probe_image(source.b, self.cfg.max_pixels)
        return (a.height, a.width), (b.height, b.width)

    def _check_header(self, source: PairSource) -> tuple[int, int]:
        """Find bad files from their headers alone (missing, unreadable, too large, odd width); return the
        input image's (height, width)."""
        a_hw, b_hw = self._header_sizes(source)
        if self.whole:
            if a_hw != b_hw:
                raise ImageError(source.a, f"{_wh(a_hw)} and its pair {_wh(b_hw)} differ in size")
        else:
            self._check_sizes(source, a_hw, b_hw)
        return a_hw if self._atob else b_hw

    def _check_sizes(self, source: PairSource, a_hw: tuple[int, int], b_hw: tuple[int, int]) -> None:
        """A and B must come out of ``prepare`` the same size, and big enough to crop."""
        cfg = self.cfg
        a_size = prepared_size(a_hw, cfg.preprocess, cfg.load_size, cfg.crop_size)
        b_size = prepared_size(b_hw, cfg.preprocess, cfg.load_size, cfg.crop_size)
        if a_size != b_size:
            raise ImageError(
                source.a,
                f"{_wh(a_hw)} and {source.b} ({_wh(b_hw)}) differ in size after "
                f"preprocess '{cfg.preprocess}' ({_wh(a_size)} vs {_wh(b_size)}); "
                "a pair needs the same size",
            )
        check_crop_fits(source.a, a_hw, cfg)


def resolve_key(key: int | tuple[int, int], length: int, what: str = "items") -> tuple[int, int]:
    """A dataset key ``i`` or ``(i, seed)`` -> (index, seed); an item's default seed is its index."""
    index, seed = key if isinstance(key, tuple) else (key, None)
    index = operator.index(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} {what}")
    return index, index if seed is None else operator.index(seed)


def augment_params(
    cfg: DataConfig, size_hw: tuple[int, int], train: bool, whole: bool, rng: np.random.Generator
) -> AugmentParams:
    """Whole images: nothing; training: random crop and flip drawn from ``rng``; else centre crop, no flip."""
    if whole:
        return AugmentParams(crop=None, flip=False)
    if train:
        return sample_params(size_hw, cfg.preprocess, cfg.crop_size, cfg.flip, rng)
    return eval_params(size_hw, cfg.preprocess, cfg.crop_size)


def check_crop_fits(path: Path, size_hw: tuple[int, int], cfg: DataConfig) -> tuple[int, int]:
    """An image stored at ``size_hw`` must come out of ``prepare`` big enough to crop; return that size."""
    size = prepared_size(size_hw, cfg.preprocess, cfg.load_size, cfg.crop_size)
    if crops(cfg.preprocess) and min(size) < cfg.crop_size:
        raise ImageError(path, f"{_wh(size)} after preprocess '{cfg.preprocess}' is smaller than crop_size "
                               f"{cfg.crop_size}")
    return size


def _folder_pairs(folder: Path) -> list[PairSource]:
    a_dir, b_dir = folder / "A", folder / "B"
    for side in (a_dir, b_dir):
        if not side.is_dir():
            raise DatasetError(f"{side}: no such folder; layout 'folders' needs A/ and B/ inside {folder}")
    a_files, b_files = _by_stem(a_dir), _by_stem(b_dir)
    only_a = [p.name for stem, p in a_files.items() if stem not in b_files]
    only_b = [p.name for stem, p in b_files.items() if stem not in a_files]
    if only_a or only_b:
        raise DatasetError(
            f"{folder}: A/ and B/ files do not pair up by name: {len(only_a)} only in A/ "
            f"({_first(only_a)}), {len(only_b)} only in B/ ({_first(only_b)}); "
            f"A/ has {len(a_files)} images, B/ has {len(b_files)}"
        )
    if not a_files:
        raise DatasetError(f"{folder}: A/ and B/ hold no images ({_extensions()})")
    return [PairSource(a=path, b=b_files[stem]) for stem, path in a_files.items()]


def split_exists(root: str | Path, split: str, layout: Layout) -> bool:
    """Whether ``root`` holds ``split`` in ``layout`` (a validation split is optional)."""
    if layout == "pix2pixhd":
        return (Path(root) / f"{split}{HD_FOLDERS['label']}").is_dir()
    if layout == "unaligned":
        # Either domain counts: a split with testA/ but no testB/ is then refused by name, not silently skipped.
        return any(folder.is_dir() for folder in domain_folders(root, split))
    return (Path(root) / split).is_dir()


def domain_folders(root: str | Path, split: str | None) -> tuple[Path, Path]:
    """Layout ``unaligned``: the folders of domains A and B as stored, ``<split>A/`` and ``<split>B/`` (the
    reference's ``phase + 'A'``); ``A/`` and ``B/`` when ``split`` is None."""
    root = Path(root)
    return root / f"{split or ''}A", root / f"{split or ''}B"


def _hd_pairs(root: Path, split: str) -> list[PairSource]:
    """pix2pixHD's folders, paired in sorted order as its reference does (Cityscapes' names differ by suffix:
    ``..._gtFine_labelIds.png``, ``..._leftImg8bit.png``); the folders must hold equally many images."""
    labels, images, instances = (root / f"{split}{suffix}" for suffix in HD_FOLDERS.values())
    for folder in (labels, images):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no such folder; layout 'pix2pixhd' needs {labels.name}/ and "
                               f"{images.name}/ (and {instances.name}/ for instance maps) in {root}")
    label_files, image_files = list_images(labels), list_images(images)
    if len(label_files) != len(image_files) or not label_files:
        raise DatasetError(f"{root}: pix2pixHD folders pair up in sorted order, so they need equally many (and "
                           f"some) images; found {labels.name}/ {len(label_files)}, {images.name}/ {len(image_files)}")
    # Instance maps pair up only where there is one per label map (whether they are needed is the config's call).
    inst_files = list_images(instances) if instances.is_dir() else []
    if len(inst_files) != len(label_files):
        inst_files = []
    return [PairSource(a=label, b=image, inst=inst_files[i] if inst_files else None)
            for i, (label, image) in enumerate(zip(label_files, image_files, strict=True))]


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            raise DatasetError(
                f"{folder}: {files[path.stem].name} and {path.name} share the name "
                f"'{path.stem}'; pairs are matched by name, so each must be unique"
            )
        files[path.stem] = path
    return files


def _aligned_half(path: Path, width: int) -> int:
    if width % 2:
        raise ImageError(path, f"width {width} is odd; aligned pairs need an even width (A|B side by side)")
    return width // 2


def _has_images(folder: Path) -> bool:
    return bool(list_images(folder))


def _first(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW_UNMATCHED])
    return shown + (", ..." if len(names) > _SHOW_UNMATCHED else "") if names else "none"


def _extensions() -> str:
    return " ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


def _wh(size_hw: tuple[int, int]) -> str:
    return f"{size_hw[1]}x{size_hw[0]}"
