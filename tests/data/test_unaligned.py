"""Specification of the unpaired (CycleGAN) dataset: layout ``unaligned``, ``<split>A/`` and ``<split>B/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pixforge.config import DataConfig, load_config
from pixforge.data.datasets import DatasetError, PairedDataset, load_pairs
from pixforge.data.image_io import ImageError, from_tensor, probe_image, write_image
from pixforge.data.label_dataset import has_split, open_dataset
from pixforge.data.unaligned import UnalignedDataset


def _cfg(root: Path, **fields: Any) -> DataConfig:
    # Small images: 40x40 stored, 32x32 crops from the image as stored.
    return DataConfig(root=root, layout="unaligned", preprocess="crop", crop_size=32, **fields)


def _domain(folder: Path, count: int, size: tuple[int, int] = (40, 40), seed: int = 0) -> list[Path]:
    """``count`` noise images (each different) in ``folder``, named 0.png, 1.png, ..."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    return [write_image(rng.integers(0, 256, (*size, 3), dtype=np.uint8), folder / f"{i}.png") for i in range(count)]


@pytest.fixture
def unequal(tmp_path: Path) -> Path:
    """3 images in trainA/, 5 in trainB/."""
    _domain(tmp_path / "trainA", 3, seed=1)
    _domain(tmp_path / "trainB", 5, seed=2)
    return tmp_path


def _same(x: dict[str, Any], y: dict[str, Any]) -> bool:
    return all(torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else x[k] == y[k] for k in x)


# --- length, pairing, seeds ---------------------------------------------------------------------------------


def test_length_is_the_larger_domain_and_a_wraps_around(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal), "train", train=True)
    assert (len(ds.a_paths), len(ds.b_paths), len(ds)) == (3, 5, 5)
    assert [Path(ds[i]["A_path"]).name for i in range(5)] == ["0.png", "1.png", "2.png", "0.png", "1.png"]
    item = ds[4]
    assert set(item) == {"A", "B", "A_path", "B_path", "index"}
    assert item["A"].shape == item["B"].shape == (3, 32, 32) and item["A"].dtype == torch.float32
    assert item["index"] == 4 and Path(item["B_path"]).parent.name == "trainB"
    with pytest.raises(IndexError, match="index 5 out of range for 5 items"):
        ds[5]


def test_items_batch_through_a_data_loader(unequal: Path) -> None:
    batch = next(iter(DataLoader(UnalignedDataset(_cfg(unequal), "train", train=True), batch_size=2)))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    assert len(batch["A_path"]) == len(batch["B_path"]) == 2


def test_same_key_gives_the_same_item_and_other_seeds_other_b_images(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal, cache=False), "train", train=True)
    assert _same(ds[2, 7], ds[2, 7])
    assert _same(ds[3], ds[3, 3])  # an int key's seed is its index
    b_names = {ds[0, seed]["B_path"] for seed in range(30)}
    assert len(b_names) == 5  # a random B per seed, from all of B
    assert {ds[0, seed]["A_path"] for seed in range(30)} == {ds[0]["A_path"]}  # A is fixed by the index


def test_serial_batches_pair_a_i_with_b_i_mod_b_whatever_the_seed(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal, serial_batches=True), "train", train=True)
    for i in range(len(ds)):
        for seed in (0, 1, 99):
            item = ds[i, seed]
            assert (item["A_path"], item["B_path"]) == (str(ds.a_paths[i % 3]), str(ds.b_paths[i % 5]))


def test_a_and_b_are_cropped_and_flipped_independently(tmp_path: Path) -> None:
    # The same image in both domains: a shared crop would make A == B for every seed.
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for side in "AB":
        (tmp_path / f"train{side}").mkdir()
        write_image(image, tmp_path / f"train{side}" / "x.png")
    ds = UnalignedDataset(_cfg(tmp_path), "train", train=True)
    items = [ds[0, seed] for seed in range(20)]
    assert sum(not torch.equal(item["A"], item["B"]) for item in items) >= 18
    assert len({item["A"].numpy().tobytes() for item in items}) > 10  # A's crop moves with the seed
    # Each side is still a crop (maybe mirrored) of the image as stored.
    crops = {image[t:t + 32, x:x + 32].tobytes() for t in range(9) for x in range(9)}
    crops |= {image[t:t + 32, x:x + 32][:, ::-1].tobytes() for t in range(9) for x in range(9)}
    assert all(from_tensor(item[side]).tobytes() in crops for item in items for side in "AB")


def test_evaluation_items_are_centre_crops_with_b_in_order(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal), "train", train=False)
    assert [Path(ds[i, 123]["B_path"]).name for i in range(5)] == [f"{i}.png" for i in range(5)]
    stored = np.asarray(Image.open(ds.a_paths[1]))
    assert np.array_equal(from_tensor(ds[1, 5]["A"]), stored[4:36, 4:36])


def test_whole_items_are_the_images_as_stored_whatever_their_sizes(tmp_path: Path) -> None:
    _domain(tmp_path / "trainA", 1, size=(20, 28))
    _domain(tmp_path / "trainB", 1, size=(44, 36))
    item = UnalignedDataset(_cfg(tmp_path), "train", train=True, whole=True)[0]
    assert item["A"].shape == (3, 20, 28) and item["B"].shape == (3, 44, 36)


# --- channels -----------------------------------------------------------------------------------------------


def test_grey_rgba_and_palette_files_in_a_colour_domain_become_rgb(tmp_path: Path) -> None:
    _domain(tmp_path / "trainA", 1)
    (tmp_path / "trainB").mkdir()
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "trainB" / "0_grey.png")
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(tmp_path / "trainB" / "1_rgba.png")
    Image.fromarray(grey, "L").convert("P").save(tmp_path / "trainB" / "2_palette.png")
    ds = UnalignedDataset(_cfg(tmp_path, serial_batches=True), "train", train=False)
    for i in range(3):
        assert ds[i]["B"].shape == (3, 32, 32)
    b = from_tensor(ds[0]["B"])
    assert np.array_equal(b[..., 0], grey[4:36, 4:36]) and (b == b[..., :1]).all()  # the grey value, replicated


def test_a_colour_file_in_a_one_channel_domain_becomes_grey(unequal: Path) -> None:
    item = UnalignedDataset(_cfg(unequal, input_nc=1), "train", train=True)[0]
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (3, 32, 32)


def test_btoa_reads_domain_a_from_the_b_folder_with_input_nc_channels(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal, direction="BtoA", input_nc=1), "train", train=True)
    assert (len(ds.a_paths), len(ds.b_paths)) == (5, 3)
    item = ds[0]
    assert Path(item["A_path"]).parent.name == "trainB" and Path(item["B_path"]).parent.name == "trainA"
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (3, 32, 32)


def test_the_horse2zebra_preset_reads_the_shared_data_and_its_grey_zebras(shared: Path) -> None:
    root = shared / "datasets" / "horse2zebra"
    if not (root / "trainB").is_dir():
        pytest.skip(f"{root} not present")
    cfg = load_config("horse2zebra", {"data": {"root": str(root), "serial_batches": True, "cache": False}})
    ds = open_dataset(cfg.data, cfg.data.train_split, train=True)
    assert isinstance(ds, UnalignedDataset)
    assert (len(ds.a_paths), len(ds.b_paths), len(ds)) == (1067, 1334, 1334)
    grey = next(i for i, path in enumerate(ds.b_paths) if probe_image(path).mode == "L")
    item = ds[grey]
    assert item["B"].shape == item["A"].shape == (3, 256, 256)
    b = from_tensor(item["B"])
    assert (b == b[..., :1]).all()
    assert ds.source_size() == (256, 256)


# --- errors and files ---------------------------------------------------------------------------------------


def test_a_missing_domain_folder_is_named(tmp_path: Path) -> None:
    _domain(tmp_path / "trainA", 2)
    with pytest.raises(DatasetError, match=r"trainB: no such folder; an unaligned dataset needs trainA/ and "
                                           r"trainB/ folders of images"):
        UnalignedDataset(_cfg(tmp_path), "train", train=True)


def test_an_empty_domain_folder_is_named(tmp_path: Path) -> None:
    _domain(tmp_path / "trainA", 2)
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match=r"trainB: no images \(.*\); an unaligned dataset needs trainA/ and "
                                           r"trainB/ folders of images") as err:
        UnalignedDataset(_cfg(tmp_path), "train", train=True)
    assert "\n" not in str(err.value)


def test_paired_folders_given_as_unaligned_suggest_the_layout(tmp_path: Path) -> None:
    _domain(tmp_path / "train" / "A", 1)
    with pytest.raises(DatasetError, match=r"trainA: no such folder.*A/ and B/ folders: that is layout 'folders'"):
        UnalignedDataset(_cfg(tmp_path), "train", train=True)


def test_label_maps_are_refused_in_one_line(unequal: Path) -> None:
    with pytest.raises(DatasetError, match=r"^data.label_nc is 12: layout 'unaligned' reads two domains of images"):
        open_dataset(_cfg(unequal, label_nc=12), "train", train=True)


def test_an_image_too_small_to_crop_is_named_at_construction(unequal: Path) -> None:
    write_image(np.zeros((20, 40, 3), np.uint8), unequal / "trainB" / "small.png")
    with pytest.raises(ImageError, match=r"trainB/small.png: 40x20 after preprocess 'crop' is smaller than crop_size"):
        UnalignedDataset(_cfg(unequal), "train", train=True)


def test_skip_bad_counts_bad_files_and_leaves_them_out(unequal: Path) -> None:
    (unequal / "trainB" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageError, match="9.png"):
        UnalignedDataset(_cfg(unequal), "train", train=True)
    ds = UnalignedDataset(_cfg(unequal, skip_bad=True), "train", train=True)
    assert len(ds.b_paths) == 5 and [Path(p).name for p, _ in ds.skipped] == ["9.png"]


def test_max_items_limits_each_domain(unequal: Path) -> None:
    ds = UnalignedDataset(_cfg(unequal, max_items=2), "train", train=True)
    assert (len(ds.a_paths), len(ds.b_paths), len(ds)) == (2, 2, 2)


def test_cached_and_uncached_items_are_identical(unequal: Path) -> None:
    cached = UnalignedDataset(_cfg(unequal), "train", train=True)
    cached.preload(progress=False)
    assert cached.cached_bytes() == 8 * 40 * 40 * 3
    uncached = UnalignedDataset(_cfg(unequal, cache=False), "train", train=True)
    assert all(_same(cached[i, 11], uncached[i, 11]) for i in range(len(cached)))


# --- hooks: open_dataset, has_split, load_pairs --------------------------------------------------------------


def test_open_dataset_picks_the_dataset_by_layout(unequal: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert isinstance(open_dataset(_cfg(unequal), "train", train=True), UnalignedDataset)
    paired = tmp_path_factory.mktemp("paired")
    (paired / "train").mkdir()
    write_image(np.zeros((40, 80, 3), np.uint8), paired / "train" / "0.png")
    cfg = DataConfig(root=paired, layout="aligned", preprocess="crop", crop_size=32)
    assert type(open_dataset(cfg, "train", train=True)) is PairedDataset


def test_has_split_finds_test_a_and_test_b(unequal: Path) -> None:
    cfg = _cfg(unequal)
    assert has_split(cfg, "train") and not has_split(cfg, "test") and not has_split(cfg, None)
    _domain(unequal / "testA", 1)
    # Half a split counts, so opening it names the missing folder instead of validation silently not running.
    assert has_split(cfg, "test")
    with pytest.raises(DatasetError, match="testB: no such folder"):
        open_dataset(cfg, "test", train=False)
    _domain(unequal / "testB", 2)
    assert len(open_dataset(cfg, "test", train=False)) == 2


def test_load_pairs_refuses_an_unaligned_dataset_in_one_line(unequal: Path) -> None:
    with pytest.raises(DatasetError, match=r"layout 'unaligned' holds two unpaired domains \(trainA/, trainB/\)"):
        load_pairs(unequal, "train", "unaligned")
